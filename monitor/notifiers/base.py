"""What every notifier shares: the alert it renders, its answer, its one error type, its settings base."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from pydantic import SecretStr, field_validator

from monitor.fields import NAME_PATTERN, Duration, FrozenModel


@dataclass(frozen=True, slots=True)
class AlertCheck:
    """One check of an incident, as an alert names it."""

    check: str  # live, ready, totp...
    label: str  # the status page's name for it: "Web server"
    status: str  # down or degraded: the worst it was in the incident
    kind: str | None  # the cause most of its failing runs had
    message: str  # the latest run of that kind
    since: float | None  # when its problem began
    consequence_of: str | None = None  # the check whose failure this one follows from


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert event about one instance, as every notifier renders it."""

    event: str  # down, degraded, resolved, reminder, test
    instance: str
    instance_label: str
    check: str
    old_status: str | None
    new_status: str
    kind: str | None
    message: str
    since: float  # when the state this event reports began
    at: float  # when the event happened
    link: str | None = None  # the instance's status page, when web.base_url is set
    check_label: str = ""  # the page's name of `check`, the incident's cause
    checks: tuple[AlertCheck, ...] = ()  # every check of the incident, the cause first in page order


@dataclass(frozen=True, slots=True)
class Sent:
    """A delivery the receiver accepted."""

    status: int | None  # HTTP status, when the notifier knows it
    detail: str = "delivered"


class NotifierError(Exception):
    """A delivery did not happen; `permanent` says whether a retry could help."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.status = status
        self.retry_after = retry_after


class Notifier(Protocol):
    name: str

    async def send(self, alert: Alert, delivery_id: str) -> Sent: ...

    async def aclose(self) -> None: ...


class NotifierSettings(FrozenModel):
    """The keys every `notifiers:` entry has; each notifier's module adds its own and a `type` literal."""

    name: str
    type: str
    url: SecretStr  # may carry a token: never logged, stored or shown
    timeout: Duration = 10.0

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(NAME_PATTERN, value):
            raise ValueError("use 1 to 63 lowercase letters, digits, - or _, starting with a letter or digit")
        return value

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: float) -> float:
        if not 0 < value <= 120:
            raise ValueError("must be more than 0s and at most 2m")
        return value
