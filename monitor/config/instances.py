"""The settings of one monitored instance: its checks and its per-instance alert overrides."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator

from monitor.fields import NAME_PATTERN, Duration, FrozenModel, format_duration
from monitor.otp import SecretError, decode_secret


class ProbeCheck(FrozenModel):
    """A live or ready check: `auto` finds the endpoint, any other value is a path."""

    enabled: bool = True
    path: str = "auto"

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if value != "auto" and not value.startswith("/"):
            raise ValueError("use auto or a path starting with /, such as /live or /up")
        return value


class TotpCheck(FrozenModel):
    enabled: bool = True
    canary_secret: SecretStr | None = None
    canary_secret_file: Path | None = None
    otp_type: Literal["totp", "steamtotp"] = "totp"
    algorithm: Literal["sha1", "sha256", "sha512", "md5"] = "sha1"
    digits: int = Field(6, ge=5, le=10)
    period: int = Field(30, ge=1)
    account_id: int | None = Field(None, ge=1)
    max_skew: Duration = 15.0
    interval: Duration | None = None  # defaults to the instance's interval

    @field_validator("canary_secret")
    @classmethod
    def _base32(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _check_base32(value.get_secret_value())
        return value


def _check_base32(secret: str) -> None:
    try:
        decode_secret(secret)
    except SecretError as exc:
        raise ValueError(f"{exc} (the value is not shown)") from None


class Checks(FrozenModel):
    live: ProbeCheck = ProbeCheck()
    ready: ProbeCheck = ProbeCheck()
    totp: TotpCheck = TotpCheck()


# --- alert routing (used by Instance and Alerts) -------------------------------------------------

AlertEvent = Literal["down", "degraded", "resolved", "reminder"]
ALERT_EVENTS: tuple[AlertEvent, ...] = ("down", "degraded", "resolved", "reminder")


class NotifyTarget(FrozenModel):
    """One notifier an alert rule sends to, and which events it gets (a plain name: every event)."""

    name: str
    events: list[AlertEvent] = Field(default_factory=lambda: list(ALERT_EVENTS), min_length=1)


def _notify_target(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


NotifyList = list[Annotated[NotifyTarget, BeforeValidator(_notify_target)]]


class InstanceAlerts(FrozenModel):
    """Per-instance overrides of `alerts:`; a key left out keeps the global value."""

    enabled: bool = True
    failure_threshold: int | None = Field(None, ge=1)
    success_threshold: int | None = Field(None, ge=1)
    remind_every: Duration | None = None
    send_on_resolved: bool | None = None
    alert_on_degraded: bool | None = None
    retry: Duration | None = None
    notify: NotifyList | None = None


class Instance(FrozenModel):
    name: str
    display_name: str | None = None
    url: str
    show_url: bool = False
    token: SecretStr | None = None
    token_file: Path | None = None
    interval: Duration = Field(60.0)
    timeout: Duration = Field(10.0)
    ca_bundle: Path | None = None
    insecure: bool = False
    cert_expiry_warning: Duration = 14 * 86400.0
    token_expiry_warning: Duration = 14 * 86400.0
    max_body: int = Field(1_048_576, ge=1024)
    checks: Checks = Checks()
    alerts: InstanceAlerts | None = None  # overrides of the global alerts: rules

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(NAME_PATTERN, value):
            raise ValueError(
                "use 1 to 63 lowercase letters, digits, - or _, starting with a letter or digit (it appears in URLs)"
            )
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL such as https://2fauth.example.com")
        if parts.query or parts.fragment:
            raise ValueError("must be a base URL without ?query or #fragment")
        return value.rstrip("/")

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: float) -> float:
        if value < 1:
            raise ValueError("must be at least 1s")
        return value

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be more than 0s")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Instance:
        if self.timeout > self.interval:
            raise ValueError(f"timeout ({format_duration(self.timeout)}) is longer than interval")
        if self.token and self.token_file:
            raise ValueError("set token or token_file, not both")
        if self.checks.totp.canary_secret and self.checks.totp.canary_secret_file:
            raise ValueError("checks.totp: set canary_secret or canary_secret_file, not both")
        return self

    @property
    def label(self) -> str:
        return self.display_name or self.name

    @property
    def totp_enabled(self) -> bool:
        return bool(self.checks.totp.enabled and self.token and self.checks.totp.canary_secret)

    def enabled_checks(self) -> list[str]:
        """The checks that run for this instance, in order."""
        names = [n for n in ("live", "ready") if getattr(self.checks, n).enabled]
        if self.totp_enabled:
            names.append("totp")
        return names

    def check_interval(self, check: str) -> float:
        if check == "totp" and self.checks.totp.interval:
            return self.checks.totp.interval
        return self.interval
