"""A generic JSON webhook: version 1 body or a Jinja2 template, custom headers, HMAC-SHA256 signing.

Headers on every delivery:
    X-Monitor-Delivery    the delivery id (the same on every retry of one delivery)
    X-Monitor-Event       down, degraded, resolved, reminder or test
    X-Monitor-Timestamp   unix seconds when this attempt was signed      (with a secret)
    X-Monitor-Signature   sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>  (with a secret)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from typing import Literal
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr, field_validator

from monitor import __version__
from monitor.bounded import BodyError, read_capped
from monitor.httpdates import retry_after
from monitor.notifiers import payload
from monitor.notifiers.base import Alert, NotifierError, NotifierSettings, Sent
from monitor.sanitize import clean
from monitor.secrets import redact

TRANSIENT_4XX = {408, 429}
RETRY_AFTER_MAX = 3600.0  # seconds: a receiver cannot hold alerts back for longer than this
REPLY_LIMIT = 64 * 1024  # bytes of a receiver's reply read at most (only error replies are read)


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The X-Monitor-Signature value for one body."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookSettings(NotifierSettings):
    """A `notifiers:` entry of type webhook: a signed JSON POST (or a Jinja2 body) to one URL."""

    type: Literal["webhook"]
    secret: SecretStr | None = None  # signs each delivery with HMAC-SHA256
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, SecretStr] = {}  # extra headers; values are treated as secrets
    template: str | None = None  # Jinja2 body; each {{ value }} is inserted as a JSON literal

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL (the value is not shown)")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", name):
                raise ValueError(
                    "a header name must be 1 to 64 letters, digits and - (the name is not shown)"
                )
            if name.lower().startswith("x-monitor-"):
                raise ValueError(f"{name}: the X-Monitor- headers are set by the monitor")
        return value

    @field_validator("template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            payload.check_template(value)
        return value


class WebhookNotifier:
    def __init__(self, cfg: WebhookSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.name = cfg.name
        self.cfg = cfg
        self.clock = clock
        self._client: httpx.AsyncClient | None = None

    def body(self, alert: Alert, delivery_id: str) -> bytes:
        data = payload.build(alert, delivery_id)
        if self.cfg.template is None:
            return payload.encode(data)
        try:
            return payload.render(self.cfg.template, data)
        except payload.TemplateProblem as exc:
            raise NotifierError(f"template: {redact(str(exc))}", permanent=True) from None

    def headers(self, body: bytes, alert: Alert, delivery_id: str) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"2fauth-monitor/{__version__}",
            **{k: v.get_secret_value() for k, v in self.cfg.headers.items()},
            "X-Monitor-Delivery": delivery_id,
            "X-Monitor-Event": alert.event,
        }
        if self.cfg.secret is not None:
            timestamp = str(int(self.clock()))
            headers["X-Monitor-Timestamp"] = timestamp
            headers["X-Monitor-Signature"] = sign(
                self.cfg.secret.get_secret_value().encode(), timestamp, body
            )
        return headers

    async def send(self, alert: Alert, delivery_id: str) -> Sent:
        body = self.body(alert, delivery_id)
        headers = self.headers(body, alert, delivery_id)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.cfg.timeout, follow_redirects=False)
        headers.setdefault("Accept-Encoding", "identity")
        try:
            # one deadline for the whole delivery: httpx's timeout is per read, and a receiver
            # dripping its answer a byte at a time would never trip it
            async with asyncio.timeout(self.cfg.timeout):
                code, excerpt, retry = await self._deliver(body, headers)
        except TimeoutError:
            raise NotifierError(f"no answer within {self.cfg.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise NotifierError(
                redact(clean(f"cannot reach the receiver: {type(exc).__name__}: {exc}"))[:300]
            ) from None
        if 200 <= code < 300:
            return Sent(code, f"HTTP {code}")
        detail = redact(f"HTTP {code}" + (f": {excerpt}" if excerpt else ""))
        if 300 <= code < 400:
            raise NotifierError(
                f"{detail} (a redirect: configure the final URL)", permanent=True, status=code
            )
        permanent = 400 <= code < 500 and code not in TRANSIENT_4XX
        asked = retry_after(retry, time.time(), RETRY_AFTER_MAX)
        wait = asked[0] if asked else None
        raise NotifierError(detail, permanent=permanent, status=code, retry_after=wait)

    async def _deliver(self, body: bytes, headers: dict[str, str]) -> tuple[int, str, str | None]:
        """(status, a short clean excerpt of an error reply, Retry-After); the reply is read only
        when it is an error, and then at most REPLY_LIMIT bytes, received or inflated."""
        assert self._client is not None
        request = self._client.build_request(
            self.cfg.method, self.cfg.url.get_secret_value(), content=body, headers=headers
        )
        response = await self._client.send(request, stream=True)
        try:
            code = response.status_code
            if 200 <= code < 300:
                return code, "", None
            try:
                reply = (await read_capped(response, REPLY_LIMIT)).decode("utf-8", errors="replace")
            except BodyError as exc:
                reply = f"(reply not read: {exc})"
            excerpt = clean(" ".join(reply[:200].split()))
            return code, excerpt, response.headers.get("retry-after")
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
