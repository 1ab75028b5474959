"""YAML + environment -> validated, frozen settings. Every problem names its key path."""

from __future__ import annotations

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
        raise ValueError(f"'{value}' is not a duration: use a number with s, m, h or d, such as 30s or 5m")
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
    rollup_retention: Duration = 400 * 86400.0
    prune_interval: Duration = 3600.0

    @model_validator(mode="after")
    def _retention(self) -> Storage:
        if self.rollup_retention < self.raw_retention:
            raise ValueError("rollup_retention must be at least raw_retention")
        return self


class BasicAuth(_Model):
    username: str = Field(min_length=1)
    password: SecretStr


class Web(_Model):
    enabled: bool = True
    listen: str = "127.0.0.1:8080"
    title: str = "2FAuth status"
    description: str = ""
    logo: Path | None = None
    base_url: str | None = None  # public URL of the status page, for links in alerts and feeds
    refresh: Duration = 60.0
    basic_auth: BasicAuth | None = None

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("use host:port, such as 127.0.0.1:8080 or 0.0.0.0:8080")
        return value


class Alerts(_Model):
    """Alert rules; the alerting module reads these."""

    failure_threshold: int = Field(3, ge=1)
    success_threshold: int = Field(2, ge=1)
    remind_every: Duration = 0.0
    send_on_resolved: bool = True
    alert_on_degraded: bool = True
    notify: list[str] = []


class Settings(_Model):
    storage: Storage = Storage()
    web: Web = Web()
    instances: list[Instance] = Field(min_length=1)
    alerts: Alerts = Alerts()
    notifiers: list[dict[str, Any]] = []
    maintenance: list[dict[str, Any]] = []
    max_concurrency: int = Field(50, ge=1, le=10_000)
    throttle_api: int = Field(60, ge=0)  # 2FAuth's THROTTLE_API, per client IP and minute
    throttle_share: float = Field(0.5, gt=0, le=1)  # warn above this share of throttle_api

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        seen: set[str] = set()
        for inst in self.instances:
            if inst.name in seen:
                raise ValueError(f"instance name '{inst.name}' is used twice")
            seen.add(inst.name)
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
        problems.append(f"{_path_str((*loc, key))}: cannot read {path}: {exc.strerror or exc}")
        return
    except UnicodeDecodeError:
        problems.append(f"{_path_str((*loc, key))}: {path} is not UTF-8 text")
        return
    if not value:
        problems.append(f"{_path_str((*loc, key))}: {path} is empty")
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
    try:
        raw = yaml.safe_load(text)
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
    return from_mapping(raw, env={k: v for k, v in env.items() if k in ("MONITOR_LISTEN", "MONITOR_DB")})


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


def warnings(settings: Settings) -> list[str]:
    """Things that work but will likely hurt, one line each."""
    out: list[str] = []
    by_host: dict[str, list[Instance]] = {}
    for inst in settings.instances:
        by_host.setdefault(urlsplit(inst.url).netloc, []).append(inst)
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
