"""Notifiers: one module per kind, each with its settings model beside its sender, one `send`
signature, one registry dict, one error type.

    NotifierError          a delivery did not happen
      .permanent           True: retrying cannot help (a 4xx other than 408/429, a bad template)
      .status              the receiver's HTTP status, when there was one
      .retry_after         seconds the receiver asked us to wait, when it said

A notifier never stores or logs its URL, secret or headers; error text is redacted before it
leaves `send`.

A new notifier is one module with a settings model (a `NotifierSettings` with its own
`type: Literal["name"]`) and a sender class taking those settings, plus one line in REGISTRY:
the configuration builds the `notifiers:` list from REGISTRY.
"""

from __future__ import annotations

import time

from monitor.notifiers.apprise import AppriseNotifier, AppriseSettings
from monitor.notifiers.base import Alert, AlertCheck, Notifier, NotifierError, NotifierSettings, Sent
from monitor.notifiers.webhook import WebhookNotifier, WebhookSettings

__all__ = [
    "REGISTRY",
    "Alert",
    "AlertCheck",
    "Notifier",
    "NotifierError",
    "NotifierSettings",
    "Sent",
    "build",
    "make_test_alert",
]

# type -> (its settings model, its sender)
REGISTRY: dict[str, tuple[type[NotifierSettings], type]] = {
    "webhook": (WebhookSettings, WebhookNotifier),
    "apprise": (AppriseSettings, AppriseNotifier),
}


def build(cfg: NotifierSettings) -> Notifier:
    """The notifier for one `notifiers:` entry."""
    notifier: Notifier = REGISTRY[cfg.type][1](cfg)
    return notifier


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
