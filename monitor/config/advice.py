"""What `validate` warns about: settings that work but will likely hurt, one line each."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from monitor.checks import SPECS
from monitor.config.errors import path_str
from monitor.config.instances import Instance
from monitor.config.schema import Settings


def api_requests_per_minute(inst: Instance) -> float:
    """How many 2FAuth API requests per minute this instance's checks make."""
    if not inst.token:
        return 0.0
    return sum(
        inst.check_settings(name).api_requests_per_run() * 60 / inst.check_interval(name)
        for name in inst.enabled_checks()
    )


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
    for index, inst in enumerate(settings.instances):  # not .index(): 10,000 instances took minutes
        parts = urlsplit(inst.url)  # host and port only: a URL may carry user:password
        by_host.setdefault(f"{parts.hostname}{f':{parts.port}' if parts.port else ''}", []).append(inst)
        check_advice = [a for name in SPECS for a in inst.check_settings(name).advice(bool(inst.token))]
        out.extend(f"{path_str(('instances', index, *loc))}: {text}" for loc, text in check_advice if not loc)
        if inst.token and parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
            out.append(
                f"{path_str(('instances', index, 'url'))}: the token is sent over "
                "plain http:// to another machine, where anyone on the path can read it; use https://"
            )
        out.extend(f"{path_str(('instances', index, *loc))}: {text}" for loc, text in check_advice if loc)
        if inst.insecure:
            out.append(f"instances[{index}].insecure: TLS certificates are not verified")
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
