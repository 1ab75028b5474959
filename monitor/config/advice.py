"""What `validate` warns about: settings that work but will likely hurt, one line each."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from monitor.config.errors import path_str
from monitor.config.instances import Instance
from monitor.config.schema import Settings


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
                f"{path_str(('instances', settings.instances.index(inst)))}: the TOTP flow is off "
                f"until {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} set"
            )
        if inst.token and parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
            out.append(
                f"{path_str(('instances', settings.instances.index(inst), 'url'))}: the token is sent over "
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
