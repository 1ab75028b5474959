"""What stands in front of every route: security headers, request limits and optional basic auth.

Plain ASGI middleware, so they cover every response, the framework's own 404 and 405 included.
Basic auth compares in constant time and slows down guessing: after a few failures from one
client address, that address gets 429 for a while. Badges, /live, /ready and the static assets
stay open so READMEs, probes and the login prompt keep working.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.config import BasicAuth

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
]
MAX_BODY = 1024  # the server answers GET and HEAD only; nothing needs a body
MAX_TARGET = 2048  # path and query
OPEN_PREFIXES = ("/live", "/ready", "/badge/", "/static/", "/favicon")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestLimits:
    """413 for a request body, 414 for an overlong URL: a status page has no use for either."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        target = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
        if target > MAX_TARGET:
            await PlainTextResponse("URL too long\n", status_code=414)(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        too_big = (length is not None and (not length.isdigit() or int(length) > MAX_BODY)) or (
            "chunked" in headers.get("transfer-encoding", "").lower()
        )
        if too_big:
            await PlainTextResponse("request body too large\n", status_code=413)(scope, receive, send)
            return
        await self.app(scope, receive, send)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_HOPS = 20  # X-Forwarded-For entries read, from the right


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def forwarded_client(peer: str, header: str | None, trusted: tuple[str, ...]) -> str:
    """The client address: the peer, unless the peer is a trusted proxy, in which case X-Forwarded-For
    is read from the right, each trusted hop vouching for the one before it. Nobody is trusted by
    default, so a visitor cannot choose the address the login limiter counts."""
    networks = _networks(trusted)
    if not networks or not header or not _trusted(peer, networks):
        return peer
    hops = [h.strip() for h in header.split(",")][-MAX_HOPS:]
    client = peer
    while hops and _trusted(client, networks):
        hop = hops.pop()
        try:
            client = str(ipaddress.ip_address(hop))
        except ValueError:
            break  # not an address: keep the last one vouched for
    return client


class ForwardedFor:
    """Sets the request's client address from X-Forwarded-For when `web.trusted_proxies` names the peer."""

    def __init__(self, app: ASGIApp, trusted: Callable[[], list[str]]) -> None:
        self.app = app
        self.trusted = trusted  # read per request: a SIGHUP reload may change it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("client"):
            trusted = tuple(self.trusted())
            if trusted:
                peer, port = scope["client"]
                client = forwarded_client(peer, Headers(scope=scope).get("x-forwarded-for"), trusted)
                if client != peer:
                    scope = {**scope, "client": (client, port)}
        await self.app(scope, receive, send)


class FailureLimiter:
    """Counts failed logins per client address in a sliding window; bounded in memory."""

    def __init__(self, limit: int = 10, window: float = 300.0, max_clients: int = 10_000) -> None:
        self.limit, self.window, self.max_clients = limit, window, max_clients
        self.failures: OrderedDict[str, list[float]] = OrderedDict()

    def blocked_for(self, client: str, now: float | None = None) -> float:
        """Seconds this client must wait before trying again (0 when it may try)."""
        now = time.monotonic() if now is None else now
        recent = [t for t in self.failures.get(client, []) if now - t < self.window]
        if len(recent) < self.limit:
            return 0.0
        return self.window - (now - recent[-self.limit])

    def fail(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        recent = [t for t in self.failures.pop(client, []) if now - t < self.window]
        self.failures[client] = [*recent, now][-self.limit :]
        while len(self.failures) > self.max_clients:
            self.failures.popitem(last=False)

    def succeed(self, client: str) -> None:
        self.failures.pop(client, None)


def _private(send: Send) -> Send:
    """Every answer behind basic auth is for one user: no cache, shared or local, may keep it."""

    async def send_private(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
            message["headers"] = [*headers, (b"cache-control", b"private, no-store")]
        await send(message)

    return send_private


def credentials_match(header: str | None, auth: BasicAuth) -> bool:
    """Does an Authorization header carry these credentials? Compared in constant time."""
    if not header or header[:6].lower() != "basic ":
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    user, sep, password = decoded.partition(b":")
    # both comparisons always run, so timing says nothing about which part was wrong
    user_ok = secrets.compare_digest(user, auth.username.encode())
    password_ok = secrets.compare_digest(password, auth.password.get_secret_value().encode())
    return bool(sep) and user_ok and password_ok


class BasicAuthGate:
    """HTTP basic auth for the page, API, feed and /metrics when `web.basic_auth` is set."""

    def __init__(self, app: ASGIApp, settings: Callable[[], BasicAuth | None], realm: Callable[[], str]):
        self.app = app
        self.settings = settings  # read per request: a SIGHUP reload can turn auth on or off
        self.realm = realm
        self.limiter = FailureLimiter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        auth = self.settings() if scope["type"] == "http" else None
        if auth is None or scope["path"].startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        send = _private(send)
        wait = self.limiter.blocked_for(client)
        if wait > 0:
            response = PlainTextResponse(
                "too many failed logins: try again later\n",
                status_code=429,
                headers={"Retry-After": str(int(wait) + 1)},
            )
            await response(scope, receive, send)
            return
        header = Headers(scope=scope).get("authorization")
        if credentials_match(header, auth):
            self.limiter.succeed(client)
            await self.app(scope, receive, send)
            return
        if header:  # a request without credentials is the browser asking for the prompt, not a guess
            self.limiter.fail(client)
        realm = "".join(ch for ch in self.realm() if " " <= ch <= "~" and ch not in '"\\')[:60] or "status"
        response = PlainTextResponse(
            "authentication required\n",
            status_code=401,
            headers={"WWW-Authenticate": f'Basic realm="{realm}", charset="UTF-8"'},
        )
        await response(scope, receive, send)
