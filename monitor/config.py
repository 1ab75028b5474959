"""YAML + environment -> validated, frozen settings. Every problem names its key path."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor import secrets


class ConfigError(Exception):
    """A configuration that cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# --- durations -------------------------------------------------------------------------------

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: Any) -> float:
    """'90s', '5m', '1h30m', '2d' or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 1h")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("expected a duration such as 30s, 5m or 1h")
    text = value.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError("is not a duration: use a number with s, m, h or d, such as 30s or 5m")
    return total


def format_duration(seconds: float) -> str:
    """Seconds -> the shortest of '45s', '5m', '2h', '3d' that is exact, else seconds."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- checks ----------------------------------------------------------------------------------


class ProbeCheck(_Model):
    """A live or ready check: `auto` finds the endpoint, any other value is a path."""

    enabled: bool = True
    path: str = "auto"

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if value != "auto" and not value.startswith("/"):
            raise ValueError("use auto or a path starting with /, such as /live or /up")
        return value


class TotpCheck(_Model):
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
    from monitor.otp import SecretError, decode_secret

    try:
        decode_secret(secret)
    except SecretError as exc:
        raise ValueError(f"{exc} (the value is not shown)") from None


class Checks(_Model):
    live: ProbeCheck = ProbeCheck()
    ready: ProbeCheck = ProbeCheck()
    totp: TotpCheck = TotpCheck()


NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"

# --- alert routing (used by Instance and Alerts) -------------------------------------------------

AlertEvent = Literal["down", "degraded", "resolved", "reminder"]
ALERT_EVENTS: tuple[AlertEvent, ...] = ("down", "degraded", "resolved", "reminder")


class NotifyTarget(_Model):
    """One notifier an alert rule sends to, and which events it gets (a plain name: every event)."""

    name: str
    events: list[AlertEvent] = Field(default_factory=lambda: list(ALERT_EVENTS), min_length=1)


def _notify_target(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


NotifyList = list[Annotated[NotifyTarget, BeforeValidator(_notify_target)]]


class InstanceAlerts(_Model):
    """Per-instance overrides of `alerts:`; a key left out keeps the global value."""

    enabled: bool = True
    failure_threshold: int | None = Field(None, ge=1)
    success_threshold: int | None = Field(None, ge=1)
    remind_every: Duration | None = None
    send_on_resolved: bool | None = None
    alert_on_degraded: bool | None = None
    retry: Duration | None = None
    notify: NotifyList | None = None


class Instance(_Model):
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


# --- storage, web, alerts ----------------------------------------------------------------------


class Storage(_Model):
    path: str = "data/monitor.db"
    raw_retention: Duration = 14 * 86400.0
    success_retention: Duration | None = None  # raw results of up runs; default: raw_retention
    rollup_retention: Duration = 400 * 86400.0
    prune_interval: Duration = 3600.0

    @model_validator(mode="after")
    def _retention(self) -> Storage:
        if self.rollup_retention < self.raw_retention:
            raise ValueError("rollup_retention must be at least raw_retention")
        return self


class BasicAuth(_Model):
    username: str = Field(min_length=1)
    password: SecretStr  # no default password

    @field_validator("password")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 8:
            raise ValueError("use at least 8 characters (the value is not shown)")
        return value


class Web(_Model):
    enabled: bool = True
    listen: str = "127.0.0.1:8080"
    title: str = "2FAuth status"
    description: str = ""
    logo: Path | None = None
    base_url: str | None = None  # public URL of the status page, for links in alerts and feeds
    refresh: Duration = 60.0  # auto refresh of the status page; 0 turns it off
    basic_auth: BasicAuth | None = None
    default_window: Literal["24h", "7d", "30d", "90d", "365d"] = "30d"  # uptime window shown first
    notice: str = ""  # one line shown above the status, such as planned work or "demo data"
    trusted_proxies: list[str] = []  # peers whose X-Forwarded-For is believed; empty: nobody's

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        import ipaddress

        for i, entry in enumerate(value):
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"entry {i + 1} is not an IP address or network such as 10.0.0.5 or 10.0.0.0/8"
                ) from None
        return [entry.strip() for entry in value]

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("use host:port, such as 127.0.0.1:8080 or 0.0.0.0:8080")
        return value


class Delivery(_Model):
    """How the outbox retries a delivery that failed: exponential backoff with jitter, bounded."""

    backoff_initial: Duration = 5.0
    backoff_max: Duration = 300.0  # the longest wait between two attempts
    give_up_after: Duration = 3 * 86400.0  # still failing this long after the alert: marked failed
    max_attempts: int = Field(0, ge=0)  # 0: no limit but give_up_after
    concurrency: int = Field(4, ge=1, le=100)  # sent at once; one at a time per check and notifier

    @model_validator(mode="after")
    def _bounds(self) -> Delivery:
        if self.backoff_initial <= 0:
            raise ValueError("backoff_initial must be more than 0s")
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must be at least backoff_initial")
        return self


class Alerts(_Model):
    """Alert rules: when a check's stored state becomes an alert, and who hears of it."""

    failure_threshold: int = Field(3, ge=1)
    success_threshold: int = Field(2, ge=1)
    remind_every: Duration = 0.0
    send_on_resolved: bool = True
    alert_on_degraded: bool = True
    retry: Duration = 0.0  # re-run a check that failed once after this delay before the failure counts
    notify: NotifyList = []  # empty: every notifier gets every event
    delivery: Delivery = Delivery()

    @field_validator("retry")
    @classmethod
    def _retry(cls, value: float) -> float:
        if value > 300:
            raise ValueError("must be at most 5m (it is a quick second look, not a schedule)")
        return value

    def for_instance(self, inst: Instance) -> Alerts:
        """These rules with the instance's `alerts:` overrides applied."""
        if inst.alerts is None:
            return self
        changes = {k: v for k, v in inst.alerts.model_dump(exclude={"enabled"}).items() if v is not None}
        if "notify" in changes:
            changes["notify"] = inst.alerts.notify
        return self.model_copy(update=changes)


# --- notifiers and maintenance windows -----------------------------------------------------------

_WEBHOOK_ONLY = ("secret", "method", "headers", "template")


class Notifier(_Model):
    """Where alerts go: a signed JSON webhook, or an Apprise URL (ntfy, Slack, Telegram, email...)."""

    name: str
    type: Literal["webhook", "apprise"]
    url: SecretStr  # may carry a token: never logged, stored or shown
    secret: SecretStr | None = None  # webhook: signs each delivery with HMAC-SHA256
    method: Literal["POST", "PUT", "PATCH"] = "POST"  # webhook
    headers: dict[str, SecretStr] = {}  # webhook: extra headers; values are treated as secrets
    template: str | None = None  # webhook: Jinja2 body; each {{ value }} is inserted as a JSON literal
    timeout: Duration = 10.0

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(NAME_PATTERN, value):
            raise ValueError("use 1 to 63 lowercase letters, digits, - or _, starting with a letter or digit")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        url = value.get_secret_value()
        if info.data.get("type") == "webhook":
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must be an http:// or https:// URL (the value is not shown)")
        elif info.data.get("type") == "apprise":
            from monitor.notifiers.apprise import check_url

            check_url(url)
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
            from monitor.notifiers.payload import check_template

            check_template(value)
        return value

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: float) -> float:
        if not 0 < value <= 120:
            raise ValueError("must be more than 0s and at most 2m")
        return value

    @model_validator(mode="after")
    def _apprise_keys(self) -> Notifier:
        extra = [k for k in _WEBHOOK_ONLY if self.type == "apprise" and k in self.model_fields_set]
        if extra:
            raise ValueError(f"{', '.join(extra)}: only for type webhook")
        return self


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _clock_time(value: Any) -> Any:
    """YAML 1.1 reads an unquoted 02:30 as the base-60 number 150: take it back as 02:30."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1440:
        return dt.time(value // 60, value % 60)
    return value


class MaintenanceWindow(_Model):
    """No alerts; shown as maintenance and left out of uptime. One-off (start), cron, or weekly (time)."""

    title: str = "Scheduled maintenance"
    description: str = ""
    instances: list[str] = []  # empty: every instance
    timezone: str = "UTC"
    start: dt.datetime | None = None  # one-off; without an offset it is read in `timezone`
    end: dt.datetime | None = None
    cron: str | None = None  # recurring: each match starts a window of `duration`
    weekdays: list[Weekday] = []  # recurring at `time` on these days (empty: every day)
    time: Annotated[dt.time, BeforeValidator(_clock_time)] | None = None
    duration: Duration | None = None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
            raise ValueError("unknown time zone: use a name such as Europe/Paris or UTC") from None
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        from croniter import croniter

        if value is not None and (len(value.split()) != 5 or not croniter.is_valid(value)):
            raise ValueError("is not a cron expression: use five fields, such as '0 3 * * sun'")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> MaintenanceWindow:
        if self.weekdays and self.time is None:
            raise ValueError("weekdays needs time, such as '02:00'")
        kinds = [k for k in ("start", "cron", "time") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("set one of start (one-off), cron, or time with weekdays (weekly)")
        if self.duration is not None and self.duration <= 0:
            raise ValueError("duration must be more than 0s")
        if self.start is None:
            if self.duration is None or self.end is not None:
                raise ValueError("a recurring window needs duration (such as 2h) and no end")
        elif (self.end is None) == (self.duration is None):
            raise ValueError("a one-off window needs end or duration (one of them)")
        elif self.end is not None and self.local(self.end) <= self.local(self.start):
            raise ValueError("end must be after start")
        return self

    def local(self, moment: dt.datetime) -> dt.datetime:
        """A configured date-time as an aware one: naive values are read in the window's time zone."""
        from zoneinfo import ZoneInfo

        return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(self.timezone))


class Settings(_Model):
    storage: Storage = Storage()
    web: Web = Web()
    instances: list[Instance] = Field(min_length=1)
    alerts: Alerts = Alerts()
    notifiers: list[Notifier] = []
    maintenance: list[MaintenanceWindow] = []
    max_concurrency: int = Field(200, ge=1, le=10_000)  # checks wait on the network, not the CPU
    throttle_api: int = Field(60, ge=0)  # 2FAuth's THROTTLE_API, per client IP and minute
    throttle_share: float = Field(0.5, gt=0, le=1)  # warn above this share of throttle_api
    # where this monitor runs (home, vps-paris): a `location` label on every metric, so that one
    # Prometheus can tell several monitors of the same instances apart
    location: str | None = None

    @field_validator("location")
    @classmethod
    def _location_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", value):
            raise ValueError("must be 1 to 63 letters, digits, '.', '_' or '-', such as home or vps-paris")
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        seen: set[str] = set()
        for inst in self.instances:
            if inst.name in seen:
                raise ValueError(f"instance name '{inst.name}' is used twice")
            seen.add(inst.name)
        return self

    @model_validator(mode="after")
    def _alert_references(self) -> Settings:
        from pydantic_core import InitErrorDetails, PydanticCustomError

        problems: list[tuple[tuple[str | int, ...], str]] = []
        names = [n.name for n in self.notifiers]
        for i, name in enumerate(names):
            if name in names[:i]:
                problems.append((("notifiers", i, "name"), f"'{name}' is used twice"))
        known = ", ".join(names) or "none; add notifiers:"
        rules = [(("alerts", "notify"), self.alerts.notify)] + [
            (("instances", i, "alerts", "notify"), inst.alerts.notify)
            for i, inst in enumerate(self.instances)
            if inst.alerts is not None and inst.alerts.notify is not None
        ]
        for loc, targets in rules:
            for j, target in enumerate(targets):
                if target.name not in names:
                    problems.append(((*loc, j), f"no notifier has this name (configured: {known})"))
        instances = {i.name for i in self.instances}
        for i, window in enumerate(self.maintenance):
            for j, name in enumerate(window.instances):
                if name not in instances:
                    problems.append((("maintenance", i, "instances", j), "no instance has this name"))
        if problems:
            raise ValidationError.from_exception_data(
                "Settings",
                [
                    InitErrorDetails(type=PydanticCustomError("reference", msg), loc=loc, input=None)
                    for loc, msg in problems
                ],
            )
        return self

    def instance(self, name: str) -> Instance | None:
        return next((i for i in self.instances if i.name == name), None)


# --- loading -------------------------------------------------------------------------------

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _path_str(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(part)):
            out += ("." if out else "") + str(part)
        else:  # a key with spaces, newlines or other odd characters: quoted, escaped, shortened
            out += "[" + json.dumps(str(part)[:64]) + "]"
    return out or "(top level)"


def _substitute(node: Any, env: Mapping[str, str], loc: tuple[Any, ...], problems: list[str]) -> Any:
    if isinstance(node, dict):
        return {k: _substitute(v, env, (*loc, k), problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, env, (*loc, i), problems) for i, v in enumerate(node)]
    if not isinstance(node, str) or "$" not in node:
        return node

    def repl(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(f"{_path_str(loc)}: environment variable {name} is not set")
        return ""

    return _VAR.sub(repl, node)


def _read_secret_file(data: dict[str, Any], key: str, target: str, loc: tuple[Any, ...], problems: list[str]):
    path = data.get(key)
    if path is None:
        return
    if not isinstance(path, str):
        return  # the model reports the type
    if data.get(target) is not None:
        return  # the model reports "not both"
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        # the path is not repeated: a secret pasted into token_file would be echoed with it
        problems.append(
            f"{_path_str((*loc, key))}: cannot read the file: {exc.strerror or type(exc).__name__}"
        )
        return
    except UnicodeDecodeError:
        problems.append(f"{_path_str((*loc, key))}: the file is not UTF-8 text")
        return
    if not value:
        problems.append(f"{_path_str((*loc, key))}: the file is empty")
        return
    data[target] = value
    del data[key]


def _resolve_files(raw: dict[str, Any], problems: list[str]) -> None:
    instances = raw.get("instances")
    for i, inst in enumerate(instances if isinstance(instances, list) else []):
        if not isinstance(inst, dict):
            continue
        _read_secret_file(inst, "token_file", "token", ("instances", i), problems)
        totp = (inst.get("checks") or {}).get("totp") if isinstance(inst.get("checks"), dict) else None
        if isinstance(totp, dict):
            _read_secret_file(
                totp, "canary_secret_file", "canary_secret", ("instances", i, "checks", "totp"), problems
            )


_FRIENDLY = {
    "extra_forbidden": "unknown key (check the spelling; see the configuration reference)",
    "missing": "required",
    "model_type": "must be a mapping of keys (key: value)",
    "model_attributes_type": "must be a mapping of keys (key: value)",
    "dict_type": "must be a mapping of keys (key: value)",
    "list_type": "must be a list (- item)",
    "too_short": "needs at least one entry",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "string_type": "must be text",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
}


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at `loc`'s parent accepts, to suggest a spelling."""
    import typing

    model: Any = Settings
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        annotation = field.annotation
        for _ in range(3):  # unwrap list[X] and X | None
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                break
            annotation = args[0] if args else annotation
        model = annotation
    return list(getattr(model, "model_fields", {}))


def _format_error(err: Any) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    msg = _FRIENDLY.get(err["type"]) or err["msg"]
    if err["type"] == "extra_forbidden" and loc:
        import difflib

        close = difflib.get_close_matches(str(loc[-1]), _known_keys(loc), n=1)
        if close:
            msg = f"unknown key (did you mean {close[0]}?)"
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if err["type"] in ("literal_error", "enum"):
        msg = msg.replace("Input should be", "must be")
    msg = msg.replace("Input should be", "must be").replace("String should", "must")
    return f"{_path_str(loc)}: {msg}"


def from_mapping(raw: Any, env: Mapping[str, str] | None = None) -> Settings:
    """Validate a parsed configuration; raises ConfigError with one line per problem."""
    env = os.environ if env is None else env
    if not isinstance(raw, dict):
        raise ConfigError(["(top level): the configuration must be a mapping of keys such as instances:"])
    problems: list[str] = []
    data = _substitute(raw, env, (), problems)
    _apply_env_overrides(data, env)
    _resolve_files(data, problems)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems.extend(_format_error(e) for e in exc.errors())
        settings = None
    if problems:
        raise ConfigError(sorted(set(problems), key=problems.index))
    assert settings is not None
    secrets.register_settings(settings)
    return settings


def _apply_env_overrides(data: dict[str, Any], env: Mapping[str, str]) -> None:
    if env.get("MONITOR_LISTEN"):
        web = data.setdefault("web", {}) if isinstance(data.get("web", {}), dict) else None
        if web is not None:
            web["listen"] = env["MONITOR_LISTEN"]
    if env.get("MONITOR_DB"):
        storage = data.setdefault("storage", {}) if isinstance(data.get("storage", {}), dict) else None
        if storage is not None:
            storage["path"] = env["MONITOR_DB"]
    if env.get("MONITOR_LOCATION"):
        data["location"] = env["MONITOR_LOCATION"]


def _parse_yaml(text: str) -> Any:
    """libyaml when present (4x faster, less memory: it matters at thousands of instances); on an
    error, the pure-Python parser again, so the message is the same wherever the file is read."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return yaml.load(text, Loader=fast)  # noqa: S506 - CSafeLoader is the safe loader
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


MAX_DEPTH = 32  # levels of nesting; a real configuration uses 6
MAX_NODES = 2_000_000  # scalars, lists and mappings; 10,000 instances use about 200,000


def _check_shape(text: str, where: str) -> None:
    """Refuse aliases and anchors (a 1 KB file of nested aliases expands to gigabytes), nesting
    deeper than MAX_DEPTH (the composer recurses) and more than MAX_NODES nodes, before anything is
    built: the event stream is read in constant memory."""
    for loader in (getattr(yaml, "CSafeLoader", yaml.SafeLoader), yaml.SafeLoader):
        try:
            _walk_events(text, where, loader)
            return
        except yaml.YAMLError:
            continue  # libyaml stops at 1,000 levels with a scanner error; the Python parser goes on
    # neither could read it: the loader reports the syntax error with its position


def _walk_events(text: str, where: str, loader: Any) -> None:
    depth = nodes = 0
    for event in yaml.parse(text, Loader=loader):
        line = f"{where}:{event.start_mark.line + 1}" if event.start_mark else where
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise ConfigError(
                [f"{line}: YAML anchors and aliases (&name, *name) are not supported; write the values out"]
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError([f"{line}: nested more than {MAX_DEPTH} levels deep"])
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        if isinstance(event, yaml.NodeEvent):
            nodes += 1
            if nodes > MAX_NODES:
                raise ConfigError([f"{line}: more than {MAX_NODES:,} values; split the file"])


def load(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate a YAML configuration file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a directory, not a configuration file"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    _check_shape(text, str(path))
    try:
        raw = _parse_yaml(text)
    except RecursionError:
        raise ConfigError([f"{path}: nested too deeply"]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError([f"{where}: not valid YAML: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {str(exc).splitlines()[0]}"]) from None
    if raw is None:
        raise ConfigError([f"{path}: the file is empty; it needs at least an instances: list"])
    return from_mapping(raw, env)


# --- environment-only configuration (docker-compose) -------------------------------------------

ENV_VARIABLES = {
    "TWOFAUTH_URL": "base URL of the 2FAuth instance (turns on configuration from the environment)",
    "TWOFAUTH_NAME": "instance name (default 2fauth)",
    "TWOFAUTH_TOKEN": "personal access token (or TWOFAUTH_TOKEN_FILE)",
    "TWOFAUTH_TOKEN_FILE": "file holding the token (Docker and Kubernetes secrets)",
    "TWOFAUTH_CA_BUNDLE": "CA bundle for a private certificate authority",
    "TWOFAUTH_INSECURE": "true to skip TLS verification (not recommended)",
    "CANARY_SECRET": "base32 canary secret (or CANARY_SECRET_FILE)",
    "CANARY_SECRET_FILE": "file holding the canary secret",
    "CANARY_ACCOUNT_ID": "id of the canary account stored in 2FAuth",
    "CANARY_OTP_TYPE": "totp or steamtotp",
    "CANARY_ALGORITHM": "sha1, sha256, sha512 or md5",
    "CANARY_DIGITS": "5 to 10",
    "CANARY_PERIOD": "seconds",
    "MONITOR_INTERVAL": "check interval (default 60s)",
    "MONITOR_TIMEOUT": "check timeout (default 10s)",
    "MONITOR_DB": "database path (also overrides storage.path in a file)",
    "MONITOR_LISTEN": "host:port of the status page (also overrides web.listen in a file)",
    "MONITOR_TITLE": "status page title",
    "MONITOR_CONFIG": "path of a configuration file, instead of --config",
    "MONITOR_LOCATION": "where this monitor runs: the location label on its metrics (also overrides location)",
}


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    """A single-instance configuration from environment variables alone."""
    env = os.environ if env is None else env
    if not env.get("TWOFAUTH_URL"):
        raise ConfigError(["no configuration: pass --config FILE, set MONITOR_CONFIG, or set TWOFAUTH_URL"])
    inst: dict[str, Any] = {"name": env.get("TWOFAUTH_NAME", "2fauth"), "url": env["TWOFAUTH_URL"]}
    for var, key in (
        ("TWOFAUTH_TOKEN", "token"),
        ("TWOFAUTH_TOKEN_FILE", "token_file"),
        ("TWOFAUTH_CA_BUNDLE", "ca_bundle"),
        ("TWOFAUTH_INSECURE", "insecure"),
        ("MONITOR_INTERVAL", "interval"),
        ("MONITOR_TIMEOUT", "timeout"),
    ):
        if env.get(var):
            inst[key] = env[var]
    totp: dict[str, Any] = {}
    for var, key in (
        ("CANARY_SECRET", "canary_secret"),
        ("CANARY_SECRET_FILE", "canary_secret_file"),
        ("CANARY_ACCOUNT_ID", "account_id"),
        ("CANARY_OTP_TYPE", "otp_type"),
        ("CANARY_ALGORITHM", "algorithm"),
        ("CANARY_DIGITS", "digits"),
        ("CANARY_PERIOD", "period"),
    ):
        if env.get(var):
            totp[key] = env[var]
    if totp:
        inst["checks"] = {"totp": totp}
    raw: dict[str, Any] = {"instances": [inst]}
    if env.get("MONITOR_TITLE"):
        raw["web"] = {"title": env["MONITOR_TITLE"]}
    return from_mapping(
        raw, env={k: v for k, v in env.items() if k in ("MONITOR_LISTEN", "MONITOR_DB", "MONITOR_LOCATION")}
    )


def load_any(path: str | None, env: Mapping[str, str] | None = None) -> Settings:
    """--config FILE, else MONITOR_CONFIG, else the environment alone."""
    env = os.environ if env is None else env
    path = path or env.get("MONITOR_CONFIG")
    return load(path, env) if path else from_env(env)


# --- warnings ------------------------------------------------------------------------------------


def api_requests_per_minute(inst: Instance) -> float:
    """How many 2FAuth API requests per minute this instance's checks make."""
    if not inst.token:
        return 0.0
    per_minute = 0.0
    if inst.totp_enabled:
        flow = 2 + (1 if inst.checks.totp.account_id else 0)
        per_minute += flow * 60 / inst.check_interval("totp")
    if inst.checks.ready.enabled and inst.checks.ready.path == "auto":
        per_minute += 60 / inst.interval  # upstream 2FAuth: readiness through the API
    return per_minute


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() in ("localhost", "localhost.") or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warnings(settings: Settings) -> list[str]:
    """Things that work but will likely hurt, one line each."""
    out: list[str] = []
    by_host: dict[str, list[Instance]] = {}
    for inst in settings.instances:
        parts = urlsplit(inst.url)  # host and port only: a URL may carry user:password
        by_host.setdefault(f"{parts.hostname}{f':{parts.port}' if parts.port else ''}", []).append(inst)
        if inst.checks.totp.enabled and not inst.totp_enabled:
            missing = [
                k
                for k, v in (("token", inst.token), ("canary_secret", inst.checks.totp.canary_secret))
                if not v
            ]
            out.append(
                f"{_path_str(('instances', settings.instances.index(inst)))}: the TOTP flow is off "
                f"until {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} set"
            )
        if inst.token and parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
            out.append(
                f"{_path_str(('instances', settings.instances.index(inst), 'url'))}: the token is sent over "
                "plain http:// to another machine, where anyone on the path can read it; use https://"
            )
        totp = inst.checks.totp
        if totp.enabled and totp.otp_type == "totp" and totp.algorithm == "md5":
            out.append(
                f"instances[{settings.instances.index(inst)}].checks.totp.algorithm: md5 accounts in 2FAuth "
                "fail about 3 time steps in 16 (2FAuth cannot compute an md5 code when its truncation offset "
                "is 13 to 15 and answers 400); the monitor reports those runs as up, saying so"
            )
        if inst.insecure:
            out.append(
                f"instances[{settings.instances.index(inst)}].insecure: TLS certificates are not verified"
            )
    if settings.throttle_api:
        budget = settings.throttle_api * settings.throttle_share
        for host, insts in by_host.items():
            rate = sum(api_requests_per_minute(i) for i in insts)
            if rate > budget:
                out.append(
                    f"instances ({', '.join(i.name for i in insts)}): {rate:.0f} API requests a minute to {host} "
                    f"is more than {settings.throttle_share:.0%} of 2FAuth's limit of {settings.throttle_api} "
                    "(THROTTLE_API); lengthen interval or checks.totp.interval"
                )
    return out
