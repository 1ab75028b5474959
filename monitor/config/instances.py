"""The settings of one monitored instance: its checks and its per-instance alert overrides."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    create_model,
    field_validator,
    model_validator,
)

from monitor.checks import SPECS, CheckSettings
from monitor.fields import NAME_PATTERN, Duration, FrozenModel, format_duration

DEFAULT_TIMEOUT = 10.0  # seconds, or the interval when that is shorter


def _checks_model() -> Any:
    """`checks:`: one key per registered check type, each with its own settings model."""
    fields: dict[str, Any] = {name: (spec.settings, spec.settings()) for name, spec in SPECS.items()}
    return create_model("Checks", __base__=FrozenModel, **fields)


def _hashable(value: Any) -> Any:
    """A key equal only for equal inputs of the same types (1, 1.0 and True differ), or None for
    an input that is not plain YAML data."""
    if isinstance(value, dict):
        items = [(_hashable(k), _hashable(v)) for k, v in value.items()]
        return None if any(k is None or v is None for k, v in items) else ("dict", *items)
    if isinstance(value, list):
        items = [_hashable(v) for v in value]
        return None if any(v is None for v in items) else ("list", *items)
    if value is None or isinstance(value, (str, int, float, bytes)):
        return (type(value), value)
    return None


def shared_sections() -> dict[str, Any]:
    """The validation context under which equal `checks:` sections share one frozen model."""
    return {"shared_checks": {}}


if TYPE_CHECKING:
    Checks = FrozenModel
else:  # built from the check registry: each key is read with Instance.check_settings
    Checks = _checks_model()


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
    timeout: Duration = Field(DEFAULT_TIMEOUT)  # when not set: at most the interval (see _consistent)
    ca_bundle: Path | None = None
    insecure: bool = False
    cert_expiry_warning: Duration = 14 * 86400.0
    token_expiry_warning: Duration = 14 * 86400.0
    max_body: int = Field(1_048_576, ge=1024)
    checks: Checks = Checks()
    alerts: InstanceAlerts | None = None  # overrides of the global alerts: rules

    @field_validator("checks", mode="wrap")
    @classmethod
    def _shared_checks(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        """Equal `checks:` sections are validated once and share one frozen model (10,000 instances
        with the same checks hold one Checks, not 10,000: about 25 MB). Errors are not shared."""
        shared = info.context.get("shared_checks") if isinstance(info.context, dict) else None
        key = _hashable(value)
        if shared is None or key is None:
            return handler(value)
        if key not in shared:
            shared[key] = handler(value)
        return shared[key]

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
        if "timeout" not in self.model_fields_set:
            # a short interval alone (`interval: 5s`) is valid: the default timeout follows it
            object.__setattr__(self, "timeout", min(DEFAULT_TIMEOUT, self.interval))
        elif self.timeout > self.interval:
            raise ValueError(
                f"timeout ({format_duration(self.timeout)}) is longer than interval "
                f"({format_duration(self.interval)}); a run must end before the next one"
            )
        if self.token and self.token_file:
            raise ValueError("set token or token_file, not both")
        for name in SPECS:
            cfg = self.check_settings(name)
            for file_key, key in cfg.secret_files.items():
                if getattr(cfg, key) and getattr(cfg, file_key):
                    raise ValueError(f"checks.{name}: set {key} or {file_key}, not both")
        return self

    @property
    def label(self) -> str:
        return self.display_name or self.name

    def check_settings(self, check: str) -> CheckSettings:
        """The settings of one check type (`checks.<check>:`)."""
        settings: CheckSettings = getattr(self.checks, check)
        return settings

    def enabled_checks(self) -> list[str]:
        """The checks that run for this instance, in order."""
        return [name for name in SPECS if self.check_settings(name).runs(bool(self.token))]

    def check_interval(self, check: str) -> float:
        return self.check_settings(check).check_interval() or self.interval
