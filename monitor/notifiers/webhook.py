"""A generic JSON webhook: version 1 body or a Jinja2 template, custom headers, HMAC-SHA256 signing.

Headers on every delivery:
    X-Monitor-Delivery    the delivery id (the same on every retry of one delivery)
    X-Monitor-Event       down, degraded, resolved, reminder or test
    X-Monitor-Timestamp   unix seconds when this attempt was signed      (with a secret)
    X-Monitor-Signature   sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>  (with a secret)
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

import httpx

from monitor import __version__
from monitor.notifiers import Alert, NotifierError, Sent, payload
from monitor.secrets import redact

if TYPE_CHECKING:
    from monitor.config import Notifier as NotifierConfig

TRANSIENT_4XX = {408, 429}


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The X-Monitor-Signature value for one body."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


class WebhookNotifier:
    def __init__(self, cfg: NotifierConfig, *, clock: Callable[[], float] = time.time) -> None:
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
        try:
            response = await self._client.request(
                self.cfg.method, self.cfg.url.get_secret_value(), content=body, headers=headers
            )
        except httpx.TimeoutException:
            raise NotifierError(f"no answer within {self.cfg.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise NotifierError(
                redact(f"cannot reach the receiver: {type(exc).__name__}: {exc}")[:300]
            ) from None
        code = response.status_code
        if 200 <= code < 300:
            return Sent(code, f"HTTP {code}")
        excerpt = " ".join(response.text[:200].split())
        detail = redact(f"HTTP {code}" + (f": {excerpt}" if excerpt else ""))
        if 300 <= code < 400:
            raise NotifierError(
                f"{detail} (a redirect: configure the final URL)", permanent=True, status=code
            )
        permanent = 400 <= code < 500 and code not in TRANSIENT_4XX
        wait = retry_after(response.headers.get("retry-after"), time.time())
        raise NotifierError(detail, permanent=permanent, status=code, retry_after=wait)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
