"""Plain data shared by every part: check results, their steps, and the fixed set of error kinds."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"


class Kind(StrEnum):
    """Why a check is not up. The set is fixed and documented in the README."""

    TIMEOUT = "timeout"  # no answer within the check's timeout
    CONNECT = "connect"  # refused, DNS failure, reset
    TLS = "tls"  # handshake or certificate verification failed
    HTTP_STATUS = "http_status"  # an unexpected non-5xx status
    SERVER_ERROR = "server_error"  # 5xx
    MAINTENANCE = "maintenance"  # Laravel maintenance mode (503)
    NOT_A_HEALTH_ENDPOINT = "not_a_health_endpoint"  # 200 with the 2FAuth web page
    AUTH = "auth"  # 401, 403, 407
    RATE_LIMITED = "rate_limited"  # 429; never counted as down
    BAD_RESPONSE = "bad_response"  # unparseable or unexpected body
    OTP_MISMATCH = "otp_mismatch"  # 2FAuth's code differs from ours
    CLOCK_SKEW = "clock_skew"  # server clock off by more than max_skew
    DECRYPT = "decrypt"  # stored secrets no longer decipher (APP_KEY changed)
    CERT_EXPIRY = "cert_expiry"  # TLS certificate expires soon
    TOKEN_EXPIRY = "token_expiry"  # noqa: S105  # personal access token expires soon
    CONFIG = "config"  # 2FAuth refuses the canary's parameters: fix the configuration
    NOT_READY = "not_ready"  # a readiness endpoint names failing components
    SLOW = "slow"  # answered, correctly, but slower than the check's slow_after
    FRONTEND = "frontend"  # the web app did not render: a script, a stylesheet or JavaScript failed


# The status a result of each kind gets unless its check decides otherwise. Degraded: the instance
# still serves codes, someone should look. Down: users are hurt now. The one exception is decided by
# its check: not_ready is down when a readiness endpoint reports fail, degraded when it reports warn
# (see default_status). The README's error-kinds table shows this mapping.
KIND_STATUS: dict[Kind, Status] = {
    Kind.TIMEOUT: Status.DOWN,
    Kind.CONNECT: Status.DOWN,
    Kind.TLS: Status.DOWN,
    Kind.HTTP_STATUS: Status.DOWN,
    Kind.SERVER_ERROR: Status.DOWN,
    Kind.MAINTENANCE: Status.DOWN,
    Kind.NOT_A_HEALTH_ENDPOINT: Status.DOWN,
    Kind.AUTH: Status.DOWN,
    Kind.RATE_LIMITED: Status.DEGRADED,
    Kind.BAD_RESPONSE: Status.DOWN,
    Kind.OTP_MISMATCH: Status.DOWN,
    Kind.CLOCK_SKEW: Status.DEGRADED,
    Kind.DECRYPT: Status.DOWN,
    Kind.CERT_EXPIRY: Status.DEGRADED,
    Kind.TOKEN_EXPIRY: Status.DEGRADED,
    Kind.CONFIG: Status.DEGRADED,
    Kind.NOT_READY: Status.DOWN,
    Kind.SLOW: Status.DEGRADED,
    Kind.FRONTEND: Status.DOWN,
}


def default_status(kind: Kind, *, warn: bool = False) -> Status:
    """The status a result of this kind gets; `warn`: the target itself says warn, not fail."""
    return Status.DEGRADED if warn else KIND_STATUS[kind]


HOUR = 3600  # seconds
DAY = 86400


@dataclass(frozen=True, slots=True)
class Step:
    """One HTTP exchange inside a check."""

    name: str
    method: str
    path: str
    status: int | None
    duration_ms: float
    outcome: str  # "ok" or a short error text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Result:
    """The outcome of one check run."""

    instance: str
    check: str
    status: Status
    kind: Kind | None = None
    message: str = ""
    latency_ms: float | None = None
    http_status: int | None = None
    path: str | None = None
    steps: list[Step] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    skew_s: float | None = None
    cert_days: float | None = None
    token_days: float | None = None
    version: str | None = None
    components: dict[str, str] = field(default_factory=dict)  # readiness: component -> status
    retry_after: float | None = None  # seconds, when rate limited
    release: str | None = None  # what the answers showed about the 2FAuth release
    notice: str | None = None  # standing advice for the instance page, shown even when up

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "check": self.check,
            "status": str(self.status),
            "kind": str(self.kind) if self.kind else None,
            "message": self.message,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 2),
            "http_status": self.http_status,
            "path": self.path,
            "steps": [s.to_dict() for s in self.steps],
            "started_at": self.started_at,
            "skew_s": self.skew_s,
            "cert_days": self.cert_days,
            "token_days": self.token_days,
            "version": self.version,
            "components": self.components,
            "release": self.release,
            "notice": self.notice,
        }
