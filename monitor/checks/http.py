"""HTTP for checks: one client per instance, capped bodies, same-origin redirects, error kinds.

Error tree (what `fetch` raises, always a `CheckFailure`):
    timeout       no complete answer in time (the check's own asyncio timeout covers slow drips)
    connect       refused, DNS, reset, closed mid-body, malformed response (neterrors.py: in words,
                  naming host:port)
    tls           handshake or certificate verification failed
    bad_response  body over the size cap, too many redirects, invalid JSON (callers)
    http_status   redirect to another origin (the token never follows)
"""

from __future__ import annotations

import json
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from monitor.bounded import BodyError, read_capped
from monitor.checks.context import InstanceContext, origin
from monitor.checks.neterrors import describe, host_port
from monitor.httpdates import http_date, retry_after
from monitor.models import Kind, Status, Step, default_status
from monitor.sanitize import clean
from monitor.secrets import redact

MAX_REDIRECTS = 5


class CheckFailure(Exception):
    """A check outcome other than up; carries what the result needs."""

    def __init__(
        self,
        kind: Kind,
        message: str,
        *,
        status: Status | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = redact(message)
        self.status = default_status(kind) if status is None else status
        self.http_status = http_status
        self.retry_after = retry_after


@dataclass
class Fetched:
    status: int
    headers: httpx.Headers
    body: bytes
    path: str
    cert_days: float | None = None
    elapsed_ms: float = 0.0

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return _INVALID

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


_INVALID = object()


def is_invalid(value: Any) -> bool:
    return value is _INVALID


async def fetch(
    ctx: InstanceContext,
    steps: list[Step],
    name: str,
    method: str,
    path: str,
    *,
    json_body: Any = None,
    auth: bool = False,
    accept: str = "application/json, text/html;q=0.9, */*;q=0.5",
) -> Fetched:
    """One request, with its step recorded; raises CheckFailure on transport problems."""
    url = ctx.inst.url + path
    headers = {"Accept": accept, "Accept-Encoding": "identity"}  # health answers are small
    for _ in range(MAX_REDIRECTS + 1):
        if auth and ctx.token and origin(url) == ctx.origin:
            headers["Authorization"] = f"Bearer {ctx.token}"
        else:
            headers.pop("Authorization", None)
        started = time.perf_counter()
        shown = _shown_path(ctx, url)
        try:
            fetched = await _send(ctx, method, url, headers, json_body)
        except CheckFailure as exc:
            steps.append(Step(name, method, shown, exc.http_status, _ms(started), exc.message))
            raise
        fetched.path = shown
        fetched.elapsed_ms = _ms(started)
        location = fetched.headers.get("location")
        if fetched.status in (301, 302, 303, 307, 308) and location:
            target = _redirect_target(url, location)
            if target is None:
                steps.append(
                    Step(name, method, shown, fetched.status, fetched.elapsed_ms, "unusable redirect")
                )
                raise CheckFailure(
                    Kind.BAD_RESPONSE,
                    f"{method} {shown} redirects to a Location that is not an http(s) URL; not followed",
                    http_status=fetched.status,
                )
            steps.append(
                Step(name, method, shown, fetched.status, fetched.elapsed_ms, f"redirect to {target}")
            )
            if origin(target) != ctx.origin:
                raise CheckFailure(
                    Kind.HTTP_STATUS,
                    f"{method} {shown} redirects to another host ({origin(target)}); not followed, so the "
                    "token is never sent there: check the instance URL",
                    http_status=fetched.status,
                )
            url = target
            if fetched.status == 303:
                method, json_body = "GET", None
            continue
        steps.append(Step(name, method, shown, fetched.status, fetched.elapsed_ms, "ok"))
        return fetched
    raise CheckFailure(Kind.BAD_RESPONSE, f"{method} {path}: more than {MAX_REDIRECTS} redirects (a loop?)")


def _redirect_target(url: str, location: str) -> str | None:
    """The absolute URL a Location points to, or None when it is not a usable http(s) URL
    (javascript:, data:, a malformed host or port)."""
    try:
        target = urljoin(url, location.strip())
        parts = urlsplit(target)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c in target for c in "\r\n\0"):
        return None
    return target


def _shown_path(ctx: InstanceContext, url: str) -> str:
    base = ctx.inst.url
    if url.startswith(base):
        return url[len(base) :] or "/"
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


async def _send(
    ctx: InstanceContext, method: str, url: str, headers: dict[str, str], json_body: Any
) -> Fetched:
    limit = ctx.inst.max_body
    try:
        request = ctx.request(method, url, headers, json_body)
        async with ctx.in_flight:  # the client is shared: this caps one instance's connections
            response = await ctx.client.send(request, stream=True)
            try:
                cert_days = _cert_days(response)
                try:
                    body = await read_capped(response, limit)
                except BodyError as exc:
                    raise CheckFailure(
                        Kind.BAD_RESPONSE,
                        f"{method} {_shown_path(ctx, url)}: {exc}",
                        http_status=response.status_code,
                    ) from None
            finally:
                await response.aclose()
    except CheckFailure:
        raise
    except (httpx.InvalidURL, httpx.RemoteProtocolError) as exc:
        # httpx builds the next request of a redirect even when it does not follow it
        if isinstance(exc, httpx.InvalidURL) or "location header" in str(exc).lower():
            raise CheckFailure(
                Kind.BAD_RESPONSE,
                f"{method} {_shown_path(ctx, url)} redirects to a Location that is not an http(s) URL; "
                "not followed",
            ) from None
        raise _transport_failure(exc, url, f"{method} {_shown_path(ctx, url)}", ctx.inst.timeout) from None
    except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
        raise _transport_failure(exc, url, f"{method} {_shown_path(ctx, url)}", ctx.inst.timeout) from None
    except ValueError as exc:
        raise CheckFailure(Kind.CONNECT, f"cannot connect to {host_port(url)}: {exc}") from None
    return Fetched(response.status_code, response.headers, body, url, cert_days)


def _transport_failure(exc: BaseException, url: str, what: str, timeout: float) -> CheckFailure:
    kind, words = describe(exc, url, what, timeout)
    return CheckFailure(kind, words)


def _cert_days(response: httpx.Response) -> float | None:
    if response.request.url.scheme != "https":
        return None  # asking a plain stream for its TLS object costs 0.1 ms a check in anyio
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    ssl_object = stream.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    try:
        cert = ssl_object.getpeercert()
    except (ValueError, ssl.SSLError):
        return None
    if not cert or "notAfter" not in cert:
        return None
    expires = ssl.cert_time_to_seconds(cert["notAfter"])
    return round((expires - time.time()) / 86400, 2)


RETRY_AFTER_MAX = 3600.0  # seconds: a longer Retry-After would pause the API checks for too long


def retry_after_info(headers: httpx.Headers, default: float = 60.0) -> tuple[float, bool]:
    """(seconds to wait, whether the server asked for more than RETRY_AFTER_MAX)."""
    return retry_after(headers.get("retry-after"), time.time(), RETRY_AFTER_MAX) or (default, False)


def server_time(headers: httpx.Headers) -> float | None:
    """The server's clock from its Date header."""
    return http_date(headers.get("date"))


def api_message(fetched: Fetched) -> str:
    """2FAuth's `message` (and `reason`) from an error body, shortened, else ''."""
    data = fetched.json()
    if not isinstance(data, dict):
        return ""
    message = clean(str(data.get("message", ""))[:200])
    reason = data.get("reason")
    if isinstance(reason, str):
        message += f" ({clean(reason[:200])})"
    elif isinstance(reason, dict | list) and reason:
        message += f" ({clean(json.dumps(reason, ensure_ascii=False)[:200])})"
    return message


def looks_like_maintenance(fetched: Fetched) -> bool:
    if fetched.status != 503:
        return False
    data = fetched.json()
    if isinstance(data, dict):
        return str(data.get("message", "")).lower().startswith("service unavailable") and "reason" not in data
    text = fetched.text[:4000].lower()
    return "service unavailable" in text or "maintenance" in text


def classify_status(fetched: Fetched, what: str) -> CheckFailure | None:
    """The failure an HTTP status means, or None for 2xx."""
    code = fetched.status
    if 200 <= code < 300:
        return None
    detail = api_message(fetched)
    suffix = f": {detail}" if detail else ""
    if code in (401, 403, 407):
        hint = {
            401: "the token is missing, expired or revoked",
            403: "forbidden (behind an auth proxy, the monitor must come through a trusted proxy)",
            407: "the auth proxy did not authenticate the request",
        }[code]
        return CheckFailure(Kind.AUTH, f"{what} answered {code}{suffix}; {hint}", http_status=code)
    if code == 429:
        wait, capped = retry_after_info(fetched.headers)
        note = f" (Retry-After asked for more; capped at {RETRY_AFTER_MAX / 3600:g}h)" if capped else ""
        return CheckFailure(
            Kind.RATE_LIMITED,
            f"{what} answered 429 (rate limited by THROTTLE_API); pausing API checks for {wait:.0f}s{note}",
            http_status=code,
            retry_after=wait,
        )
    if looks_like_maintenance(fetched):
        return CheckFailure(
            Kind.MAINTENANCE, f"{what} answered 503: 2FAuth is in maintenance mode", http_status=code
        )
    if code >= 500:
        return CheckFailure(Kind.SERVER_ERROR, f"{what} answered {code}{suffix}", http_status=code)
    return CheckFailure(Kind.HTTP_STATUS, f"{what} answered {code}{suffix}", http_status=code)


TOKEN_RESET_MAJOR = 8  # 2FAuth v8.0.0 invalidated every personal access token made before it


def with_release_hint(message: str, version: str | None) -> str:
    """A 401's message, plus the v8 token reset when the instance is known to run v8 or later
    (a user on another release is never told about it)."""
    major = version.split(".", 1)[0] if version else ""
    if major.isdigit() and int(major) >= TOKEN_RESET_MAJOR:
        return f"{message} (2FAuth v8 invalidated every token created before it: generate a new one)"
    return message
