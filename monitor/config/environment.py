"""The environment's part: a whole single-instance configuration from variables alone (the
docker-compose setup), and the variables that override keys of a configuration file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Every variable the monitor reads, with what it means; tests/test_docs.py checks that the README
# documents each one and that the tables below use no other.
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
    "MONITOR_TIMEOUT": "check timeout (default 10s, or the interval when shorter)",
    "MONITOR_DB": "database path (also overrides storage.path in a file)",
    "MONITOR_LISTEN": "host:port of the status page (also overrides web.listen in a file)",
    "MONITOR_TITLE": "status page title",
    "MONITOR_CONFIG": "path of a configuration file, instead of --config",
    "MONITOR_LOCATION": "where this monitor runs: the location label on its metrics (also overrides location)",
}

# environment-only mode: variable -> key of the one instance, and of its checks.totp
INSTANCE_KEYS = {
    "TWOFAUTH_TOKEN": "token",
    "TWOFAUTH_TOKEN_FILE": "token_file",
    "TWOFAUTH_CA_BUNDLE": "ca_bundle",
    "TWOFAUTH_INSECURE": "insecure",
    "MONITOR_INTERVAL": "interval",
    "MONITOR_TIMEOUT": "timeout",
}
CANARY_KEYS = {
    "CANARY_SECRET": "canary_secret",
    "CANARY_SECRET_FILE": "canary_secret_file",
    "CANARY_ACCOUNT_ID": "account_id",
    "CANARY_OTP_TYPE": "otp_type",
    "CANARY_ALGORITHM": "algorithm",
    "CANARY_DIGITS": "digits",
    "CANARY_PERIOD": "period",
}
OVERRIDES = ("MONITOR_LISTEN", "MONITOR_DB", "MONITOR_LOCATION")  # these also apply over a file


def apply_overrides(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """MONITOR_LISTEN, MONITOR_DB and MONITOR_LOCATION replace their keys in a parsed configuration."""
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


def mapping_from_env(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """(the configuration TWOFAUTH_URL and its companions describe, the overrides to apply to it);
    validated by the caller like any file."""
    inst: dict[str, Any] = {"name": env.get("TWOFAUTH_NAME", "2fauth"), "url": env["TWOFAUTH_URL"]}
    inst.update({key: env[var] for var, key in INSTANCE_KEYS.items() if env.get(var)})
    totp = {key: env[var] for var, key in CANARY_KEYS.items() if env.get(var)}
    if totp:
        inst["checks"] = {"totp": totp}
    raw: dict[str, Any] = {"instances": [inst]}
    if env.get("MONITOR_TITLE"):
        raw["web"] = {"title": env["MONITOR_TITLE"]}
    return raw, {k: v for k, v in env.items() if k in OVERRIDES}
