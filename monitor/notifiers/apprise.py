"""Every other service through Apprise URLs: ntfy, Gotify, Slack, Discord, Telegram, Matrix, email...

Apprise URLs carry their tokens (a Slack token, an ntfy topic, a mail password): the URL and its
parts are registered as secrets, Apprise's own log lines stay inside Apprise (we log one redacted
line per failed attempt), and only the notifier's name is ever stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sys
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import SecretStr, field_validator, model_validator

from monitor import secrets
from monitor.notifiers import payload
from monitor.notifiers.base import Alert, NotifierError, NotifierSettings, Sent
from monitor.notifiers.webhook import TRANSIENT_4XX, WebhookSettings
from monitor.sanitize import clean

_ERROR_CODE = re.compile(r"error=(\d{3})")
# Apprise logs carry URL parts; our RedactingFilter would mask them, but the worker already logs
# one line per failed attempt, so Apprise's lines are kept for the attempt record only.
logging.getLogger("apprise").propagate = False
logging.getLogger("apprise").addHandler(logging.NullHandler())


def _apprise() -> Any:
    import apprise  # imported on first use: loading its 100+ plugins takes half a second

    return apprise


TOKEN_MIN = 8


def register_url_secrets(url: str) -> None:
    """Register the parts of an Apprise URL that are usually tokens, so no log line can show them."""
    secrets.register(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return
    secrets.register(unquote(parts.username or ""))
    secrets.register(unquote(parts.password or ""))
    # Tokens are long; a short word ("alerts", "2fauth") redacted everywhere would garble every
    # message that happens to contain it, so only parts of 8 characters or more are registered.
    if host and "." not in host and ":" not in host and host != "localhost" and len(host) >= TOKEN_MIN:
        secrets.register(host)  # slack://TokenA/..., tgram://bottoken/...
    for segment in parts.path.split("/"):
        if len(segment) >= TOKEN_MIN:
            secrets.register(unquote(segment))
    for _, value in parse_qsl(parts.query):
        if len(value) >= TOKEN_MIN:
            secrets.register(value)


def check_url(url: str) -> None:
    """ValueError (one line, the URL not shown) unless Apprise can use this URL."""
    register_url_secrets(url)
    if not _apprise().Apprise().add(url):
        raise ValueError(
            "is not a URL Apprise can use (the value is not shown); "
            "see https://github.com/caronc/apprise/wiki for each service's URL"
        )


def _notify_type(event: str) -> Any:
    types = _apprise().NotifyType
    return {
        "down": types.FAILURE,
        "reminder": types.FAILURE,
        "degraded": types.WARNING,
        "resolved": types.SUCCESS,
    }.get(event, types.INFO)


class AppriseSettings(NotifierSettings):
    """A `notifiers:` entry of type apprise: one Apprise URL (ntfy, Slack, Telegram, email...)."""

    type: Literal["apprise"]

    @model_validator(mode="before")
    @classmethod
    def _webhook_keys(cls, data: Any) -> Any:
        """A webhook key here is named as such, rather than as an unknown key."""
        if isinstance(data, dict):
            extra = [k for k in WebhookSettings.model_fields if k not in cls.model_fields and k in data]
            if extra:
                raise ValueError(f"{', '.join(extra)}: only for type webhook")
        return data

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        check_url(value.get_secret_value())
        return value


class AppriseNotifier:
    def __init__(self, cfg: AppriseSettings) -> None:
        self.name = cfg.name
        self.cfg = cfg
        url = cfg.url.get_secret_value()
        register_url_secrets(url)
        self._apprise = _apprise().Apprise()
        if not self._apprise.add(url):
            raise NotifierError("the URL is not one Apprise can use", permanent=True)

    async def send(self, alert: Alert, delivery_id: str) -> Sent:
        """Deliver through a child process killed at the timeout (see apprise_child): Apprise's own
        threads would outlive any timeout here and read a reply of any size."""
        job = {
            "url": self.cfg.url.get_secret_value(),
            "title": payload.title(alert),
            "body": payload.text(alert),
            "event": alert.event,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "monitor.notifiers.apprise_child",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            async with asyncio.timeout(self.cfg.timeout):
                out, _ = await proc.communicate(json.dumps(job).encode())
        except TimeoutError:
            raise NotifierError(f"no answer within {self.cfg.timeout:g}s") from None
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        try:
            outcome = json.loads(out.decode("utf-8", errors="replace").strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise NotifierError("the Apprise process failed without an answer") from None
        if outcome.get("ok"):
            return Sent(None, "delivered")
        detail = (
            clean(str(outcome.get("detail") or ""))[:300] or "the service did not accept the notification"
        )
        match = _ERROR_CODE.search(detail)
        code = int(match.group(1)) if match else None
        permanent = code is not None and 400 <= code < 500 and code not in TRANSIENT_4XX
        raise NotifierError(secrets.redact(detail), permanent=permanent, status=code)

    async def aclose(self) -> None:
        return None
