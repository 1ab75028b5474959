"""Notifiers: one module per kind, one `send` signature, a type -> class registry, one error type.

    NotifierError          a delivery did not happen
      .permanent           True: retrying cannot help (a 4xx other than 408/429, a bad template)
      .status              the receiver's HTTP status, when there was one
      .retry_after         seconds the receiver asked us to wait, when it said

A notifier never stores or logs its URL, secret or headers; error text is redacted before it
leaves `send`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from monitor.config import Notifier as NotifierConfig
    from monitor.config import Settings

__all__ = ["REGISTRY", "Alert", "Notifier", "NotifierError", "Sent", "build", "build_all", "make_test_alert"]


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert event, as every notifier renders it."""

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


def _registry() -> dict[str, type]:
    from monitor.notifiers.apprise import AppriseNotifier
    from monitor.notifiers.webhook import WebhookNotifier

    return {"webhook": WebhookNotifier, "apprise": AppriseNotifier}


REGISTRY: dict[str, type] = _registry()


def build(cfg: NotifierConfig) -> Notifier:
    """The notifier for one `notifiers:` entry."""
    notifier: Notifier = REGISTRY[cfg.type](cfg)
    return notifier


def build_all(settings: Settings) -> dict[str, Notifier]:
    return {cfg.name: build(cfg) for cfg in settings.notifiers}


def make_test_alert(now: float | None = None) -> Alert:
    """The event `2fauth-monitor test-alert` sends."""
    now = time.time() if now is None else now
    return Alert(
        event="test",
        instance="test",
        instance_label="Test",
        check="test",
        old_status="up",
        new_status="up",
        kind=None,
        message="A test alert from 2fauth-monitor: if you read this, delivery works.",
        since=now,
        at=now,
    )
