"""When to alert: thresholds, degraded warnings, resolve, reminders and maintenance, as timelines.

The evaluator takes time from the results, so each timeline is a list of (minute, status) with no
sleeping; the engine tests run the same rules over a real SQLite store.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from monitor import config
from monitor.alerts.evaluate import AlertState, evaluate
from monitor.notifiers.apprise import AppriseSettings
from monitor.notifiers.webhook import WebhookSettings

MINUTE = 60.0
T0 = 1_800_000_000.0


def rules(**alerts):
    return config.from_mapping(
        {"instances": [{"name": "home", "url": "http://127.0.0.1:9"}], "alerts": alerts}, env={}
    ).alerts


def timeline(statuses, maintenance=(), **alert_rules):
    """Feed one result a minute; returns [(minute, event, old, new, since_minute)]."""
    r = rules(**alert_rules)
    state = AlertState("home", "totp")
    out = []
    for minute, status in enumerate(statuses):
        at = T0 + minute * MINUTE
        for e in evaluate(
            state,
            status,
            at,
            r,
            kind=None if status == "up" else "timeout",
            message=f"run {minute}",
            maintenance=minute in maintenance,
        ):
            out.append((minute, e.event, e.old_status, e.new_status, (e.since - T0) / MINUTE))
    return out


D, W, U = "down", "degraded", "up"


def test_three_consecutive_failures_make_one_down_alert_since_the_first():
    assert timeline([U, D, D, D, D, D]) == [(3, "down", "up", "down", 1)]


def test_a_blip_that_recovers_before_the_threshold_alerts_nobody():
    assert timeline([D, D, U, D, D, U, D, U]) == []


def test_resolved_needs_success_threshold_ups_and_reports_the_whole_outage():
    assert timeline([D, D, D, U, D, U, U, U]) == [
        (2, "down", "up", "down", 0),
        (6, "resolved", "down", "up", 0),  # the up at 3 was broken by the down at 4
    ]


def test_thresholds_are_configurable():
    assert timeline([D, U, U], failure_threshold=1, success_threshold=1) == [
        (0, "down", "up", "down", 0),
        (1, "resolved", "down", "up", 0),
    ]


def test_degraded_is_a_separate_warning_that_escalates_and_de_escalates():
    events = timeline([W, W, W, D, D, D, W, W, U, U])
    assert events == [
        (2, "degraded", "up", "degraded", 0),
        (5, "down", "degraded", "down", 3),
        (7, "degraded", "down", "degraded", 6),
        (9, "resolved", "degraded", "up", 0),  # since: when the problem began
    ]


def test_degraded_can_be_left_out_of_alerts():
    assert timeline([W, W, W, W], alert_on_degraded=False) == []
    # degraded then counts as working: it ends a down alert like an up does
    assert timeline([D, D, D, W, W], alert_on_degraded=False) == [
        (2, "down", "up", "down", 0),
        (4, "resolved", "down", "up", 0),
    ]


def test_reminders_repeat_while_down_and_stop_when_resolved():
    events = timeline([D] * 25 + [U, U, D], remind_every="10m")
    assert [(m, e) for m, e, *_ in events] == [
        (2, "down"),
        (12, "reminder"),
        (22, "reminder"),
        (26, "resolved"),
    ]
    assert all(since == 0 for *_, since in events)


def test_no_reminders_by_default():
    assert [e for _, e, *_ in timeline([D] * 100)] == ["down"]


def test_send_on_resolved_off_still_ends_the_alert_so_the_next_outage_alerts_again():
    events = timeline([D, D, D, U, U, D, D, D], send_on_resolved=False)
    assert [(m, e) for m, e, *_ in events] == [(2, "down"), (7, "down")]


def test_nothing_is_sent_during_maintenance_and_counts_restart_after_it():
    # down from minute 0; maintenance 1..4; the failures before it do not carry over
    events = timeline([D, D, D, D, D, D, D, D], maintenance={1, 2, 3, 4})
    assert events == [(7, "down", "up", "down", 5)]


def test_a_resolve_during_maintenance_waits_for_the_window_to_end():
    events = timeline([D, D, D, U, U, U, U, U], maintenance={3, 4, 5}, remind_every="1m")
    # ups during the window do not count; no reminder goes out for a check that is up
    assert [(m, e) for m, e, *_ in events] == [(2, "down"), (7, "resolved")]


def test_no_reminder_during_maintenance():
    events = timeline([D] * 10, maintenance=set(range(3, 10)), remind_every="2m")
    assert [e for _, e, *_ in events] == ["down"]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([D, W, D], ["degraded"]),  # three bad results, but not three downs
        ([W, D, D, D], ["degraded", "down"]),
        ([D, D, W, W, W], ["degraded"]),
    ],
)
def test_mixed_failures(statuses, expected):
    assert [e for _, e, *_ in timeline(statuses)] == expected


# --- the documentation matches the code ----------------------------------------------------------

DOC = Path(__file__).resolve().parent.parent / "docs" / "alerting.md"
DOC_ENV = {
    "WEBHOOK_SECRET": "whsec-0123456789",
    "HOOK_TOKEN": "hook-token-0123",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/XXXX",
    "NTFY_PASSWORD": "ntfy-pass-0123",
}


@pytest.mark.parametrize(
    "model",
    [
        config.Alerts,
        config.Delivery,
        config.InstanceAlerts,
        WebhookSettings,
        AppriseSettings,
        config.MaintenanceWindow,
        config.NotifyTarget,
    ],
)
def test_every_setting_is_documented(model):
    text = DOC.read_text()
    missing = [name for name in model.model_fields if f"`{name}`" not in text]
    assert missing == [], f"{model.__name__}: undocumented {missing}"


def test_every_webhook_body_key_is_documented():
    from monitor.notifiers import make_test_alert, payload

    text = DOC.read_text()
    body = payload.build(make_test_alert(), "x")
    assert [key for key in body if f"`{key}`" not in text] == []
    assert f'"version": {payload.VERSION}' in text


def test_every_yaml_example_in_the_docs_is_a_valid_configuration():
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 8
    notifiers = [
        {"name": n, "type": "webhook", "url": "https://hooks.example.com/x"} for n in ("ops", "phone")
    ]
    for block in blocks:
        raw = yaml.safe_load(block)
        if set(raw) == {"template"}:
            raw = {"notifiers": [{"name": "t", "type": "webhook", "url": "https://x.example", **raw}]}
        raw.setdefault("instances", [{"name": "home", "url": "https://2fauth.example.com"}])
        raw.setdefault("notifiers", notifiers)
        config.from_mapping(raw, env=DOC_ENV)  # raises ConfigError with the problem
