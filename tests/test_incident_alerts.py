"""One incident, one alert: a running monitor against the simulator fails several checks with one
cause and sends one signed down webhook and one recovery naming them all, the cause first and the
others as its consequences; separate outages stay separate; a slow 2FAuth is one warning. The
engine's own rules (headline, one run per line, reminders, maintenance) run on a real SQLite store
with a fake clock."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from typing import Any

from monitor import config
from monitor.alerts.engine import Alerting
from monitor.models import Kind, Result, Status
from monitor.store import Store

from .conftest import instance_config, wait_for
from .receiver import SECRET, Receiver, verify

ALL = ["live", "ready", "totp"]


def _config(sim, receiver: Receiver, **alerts: Any) -> dict[str, Any]:
    return {
        "instances": [instance_config(sim.url, "home", interval="1s", timeout="1s", display_name="Home")],
        "notifiers": [{"name": "hook", "type": "webhook", "url": receiver.url + "/hook", "secret": SECRET}],
        "alerts": {"failure_threshold": 2, "success_threshold": 2, **alerts},
    }


def _bodies(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r["body"]) for r in receiver.requests]


def _outage(sim, receiver: Receiver, faults: list[str], **options: Any) -> list[dict[str, Any]]:
    """Make the fault until its alert arrives, clear it until the recovery arrives; the two bodies."""
    before = len(receiver.requests)
    sim.set_faults(faults, **options)
    wait_for(lambda: len(receiver.requests) > before, timeout=30, message=f"the alert for {faults}")
    sim.set_faults([])
    wait_for(lambda: len(receiver.requests) > before + 1, timeout=30, message=f"the recovery from {faults}")
    time.sleep(2.5)  # another check's late alert would arrive now
    return _bodies(receiver)[before:]


def test_one_maintenance_outage_across_three_checks_is_one_down_and_one_resolved(
    sim, write_config, start_monitor
):
    receiver = Receiver()
    mon = start_monitor(write_config(_config(sim, receiver)))
    try:
        time.sleep(3)  # every check up at least once
        down, resolved = _outage(sim, receiver, ["maintenance"])
        assert mon.stop() == 0
    finally:
        receiver.close()
    assert [(b["event"], b["severity"]) for b in (down, resolved)] == [
        ("down", "critical"),
        ("resolved", "info"),
    ]
    assert (down["check"], down["check_label"], down["kind"]) == ("live", "Web server", "maintenance")
    assert [c["check"] for c in down["checks"]] == ALL
    assert [c["consequence_of"] for c in down["checks"]] == [None, "live", "live"]
    assert {c["kind"] for c in down["checks"]} == {"maintenance"}
    assert down["title"] == "Home is down: Web server (maintenance); Readiness and TOTP codes too"
    assert "Readiness: down as a consequence (maintenance)" in down["text"]
    assert resolved["title"] == "Home is up again: Web server, Readiness, TOTP codes"
    assert resolved["since"] == down["since"]
    assert all(verify(SECRET, r["headers"], r["body"], time.time()) for r in receiver.requests)
    assert [r["headers"]["x-monitor-delivery"] for r in receiver.requests] == [down["id"], resolved["id"]]
    assert "Traceback" not in mon.output()


def test_separate_outages_stay_separate_and_consequences_follow_their_cause(sim, write_config, start_monitor):
    receiver = Receiver()
    mon = start_monitor(write_config(_config(sim, receiver)))
    try:
        time.sleep(3)
        refused = _outage(sim, receiver, ["down"])
        database = _outage(sim, receiver, ["db_down"])  # the web server answers, the API does not
        assert mon.stop() == 0
    finally:
        receiver.close()
    assert [b["event"] for b in refused + database] == ["down", "resolved", "down", "resolved"]
    assert len({b["since"] for b in refused + database}) == 2  # two incidents, each its own start
    assert (refused[0]["check"], refused[0]["kind"]) == ("live", "connect")
    assert [(c["check"], c["consequence_of"]) for c in refused[0]["checks"]] == [
        ("live", None),
        ("ready", "live"),
        ("totp", "live"),
    ]
    assert (database[0]["check"], database[0]["kind"]) == ("ready", "server_error")
    assert [(c["check"], c["consequence_of"]) for c in database[0]["checks"]] == [
        ("ready", None),
        ("totp", "ready"),
    ]


def test_a_slow_2fauth_is_one_warning(sim, write_config, start_monitor):
    receiver = Receiver()
    raw = _config(sim, receiver)
    raw["instances"][0] = instance_config(
        sim.url,
        "home",
        interval="2s",
        timeout="2s",
        display_name="Home",
        checks={c: {"slow_after": "300ms"} for c in ALL},
    )
    mon = start_monitor(write_config(raw))
    try:
        time.sleep(4)
        warning, resolved = _outage(sim, receiver, ["slow"], delay=0.6)
        assert mon.stop() == 0
    finally:
        receiver.close()
    assert (warning["event"], warning["severity"], warning["kind"]) == ("degraded", "warning", "slow")
    assert warning["title"].startswith("Home is degraded: Web server (slow)")
    assert {c["status"] for c in warning["checks"]} == {"degraded"}
    assert resolved["event"] == "resolved"


# --- the engine's rules, on a real store with a fake clock ----------------------------------------

T0 = 1_800_000_000.0


class Rig:
    def __init__(self, tmp_path, notifiers: bool = True, **alerts: Any) -> None:
        raw = {
            "storage": {"path": str(tmp_path / "monitor.db")},
            "instances": [
                {
                    "name": "home",
                    "url": "http://127.0.0.1:9",
                    "token": "t" * 40,
                    "checks": {"totp": {"canary_secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}},
                }
            ],
            "notifiers": [{"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/hook"}]
            if notifiers
            else [],
            "alerts": {"failure_threshold": 3, "success_threshold": 2, **alerts},
        }  # no worker runs: the outbox keeps what would be sent, and when
        self.settings = config.from_mapping(raw, env={})
        self.now = T0
        self.store = Store(self.settings.storage.path)
        self.alerting = Alerting(self.store, lambda: self.settings, clock=lambda: self.now)

    def run(self, minute: float, check: str, kind: str | None, message: str = "", maintenance: bool = False):
        """One result of `check` at that minute (kind None: up); returns the events it made."""
        self.now = T0 + minute * 60
        status = Status.UP if kind is None else Status.DOWN
        self.store.record(
            Result("home", check, status, Kind(kind) if kind else None, message, started_at=self.now),
            maintenance=maintenance,
        )
        self.store.flush()
        return self.alerting.catch_up("home", check)

    def minute(self, minute: float, kinds: dict[str, str | None], **kw: Any) -> list:
        return [e for check, kind in kinds.items() for e in self.run(minute, check, kind, **kw)]

    def outbox(self) -> list[tuple]:
        return self.store.db.execute(
            'select e.event, e."check", e.kind, e.message, o.next_attempt_at from outbox o '
            "join alert_events e on e.id = o.event_id order by o.id"
        ).fetchall()


def test_the_headline_is_the_main_cause_and_a_line_is_one_run(tmp_path):
    rig = Rig(tmp_path)
    up = {c: None for c in ALL}
    rig.minute(0, up)
    # the TOTP flow: a refused connection first (2FAuth restarting), then the token is refused
    assert rig.run(1, "totp", "connect", "cannot connect: 127.0.0.1:9 refused") == []
    assert rig.run(2, "totp", "auth", "GET /api/v1/user answered 401") == []
    rig.minute(2.5, {"live": None, "ready": None})
    [down] = rig.run(3, "totp", "auth", "GET /api/v1/user answered 401 (token revoked)")
    assert (down.event, down.check, down.kind) == ("down", "totp", "auth")
    assert down.message == "GET /api/v1/user answered 401 (token revoked)"
    assert [(c["check"], c["kind"], c["message"]) for c in down.checks] == [
        ("totp", "auth", "GET /api/v1/user answered 401 (token revoked)")
    ]
    assert down.since == T0 + 60  # the incident began with the first failing run
    # the other checks answered since it began: nothing to wait for
    assert rig.outbox()[0][4] == T0 + 180


def test_a_down_alert_waits_for_the_other_checks_and_is_brought_up_to_date(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="monitor.alerts")
    rig = Rig(tmp_path, failure_threshold=1)
    rig.minute(0, {c: None for c in ALL})
    [down] = rig.run(1, "live", "connect", "cannot connect: 127.0.0.1:9 refused")
    [(event, check, kind, _, due)] = rig.outbox()
    assert due == T0 + 60 + 1.2 * 60 + 5  # held: readiness and TOTP have not run since
    assert rig.run(1.2, "ready", "connect", "cannot connect: 127.0.0.1:9 refused") == []
    assert rig.run(1.4, "totp", "connect", "cannot connect: 127.0.0.1:9 refused") == []
    [(event, check, kind, _, due)] = rig.outbox()  # released once every check had its say
    assert (event, check, kind, due) == ("down", "live", "connect", T0 + 84)
    stored = json.loads(rig.store.db.execute("select checks from alert_events").fetchone()[0])
    assert [(c["check"], c["consequence_of"]) for c in stored] == [
        ("live", None),
        ("ready", "live"),
        ("totp", "live"),
    ]
    logged = [r.getMessage() for r in caplog.records]
    assert any("held up to 77s for the other checks" in m for m in logged)
    assert "the held alert of home goes out now, naming live, ready, totp" in logged


def test_one_reminder_per_instance_and_none_during_maintenance(tmp_path):
    rig = Rig(tmp_path, failure_threshold=1, remind_every="10m")
    rig.minute(0, {c: None for c in ALL})
    events = []
    for minute in range(1, 25):
        events += rig.minute(minute, {c: "connect" for c in ALL}, maintenance=15 <= minute < 25)
    assert [e.event for e in events] == ["down", "reminder"]  # at 1, at 11; none in 15..24
    events = []
    for minute in (26, 27):
        events += rig.minute(minute, {c: None for c in ALL})
    assert [e.event for e in events] == ["resolved"]
    assert [c["check"] for c in events[0].checks] == ALL


def test_only_a_problem_someone_is_told_of_is_a_warning(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="monitor.alerts")
    engine_log = "monitor.alerts.engine"
    for notifiers in (True, False):
        rig = Rig(tmp_path / str(notifiers), notifiers=notifiers, failure_threshold=1, success_threshold=1)
        rig.minute(0, {c: None for c in ALL})
        for minute in (1, 2, 3, 4):
            kind = "connect" if minute % 2 else None
            rig.minute(minute, {c: kind for c in ALL})
        rig.store.close()
    alerts = [(r.levelno, r.getMessage()) for r in caplog.records if r.message.startswith("alert:")]
    assert [level for level, _ in alerts] == [logging.WARNING, logging.INFO] * 2 + [logging.INFO] * 4
    told, quiet = alerts[:4], alerts[4:]
    assert all("; to hook" in text for _, text in told)
    advice = [text for _, text in quiet if "add one under notifiers:" in text]
    assert len(advice) == 1 and "down" in advice[0]  # the advice once, on the first alert
    assert all("; to no notifier" in text for _, text in quiet)
    assert not [r for r in caplog.records if r.name == engine_log and r.levelno > logging.WARNING]


def test_a_new_cause_within_an_incident_is_told_once_and_degraded_escalates(tmp_path):
    rig = Rig(tmp_path, failure_threshold=1, success_threshold=1)
    rig.minute(0, {c: None for c in ALL})
    [wrong] = rig.minute(1, {"live": None, "ready": None, "totp": "otp_mismatch"})
    assert (wrong.event, wrong.check) == ("down", "totp")
    # then the server stops: the TOTP flow's failure is now a consequence of a new cause
    [stopped] = rig.minute(2, {c: "connect" for c in ALL})
    assert (stopped.event, stopped.old_status, stopped.check, stopped.kind) == (
        "down",
        "down",
        "live",
        "connect",
    )
    assert rig.minute(3, {c: "connect" for c in ALL}) == []  # nothing new
    stored = json.loads(
        rig.store.db.execute("select checks from alert_events order by id desc").fetchone()[0]
    )
    assert [(c["check"], c["consequence_of"]) for c in stored] == [
        ("live", None),
        ("ready", "live"),
        ("totp", "live"),
    ]
    [back] = rig.minute(4, {c: None for c in ALL})
    assert back.event == "resolved" and back.since == T0 + 60

    slow = Rig(tmp_path / "slow", failure_threshold=1, success_threshold=1)
    slow.minute(0, {c: None for c in ALL})
    slow.now = T0 + 60
    slow.store.record(Result("home", "totp", Status.DEGRADED, Kind.SLOW, "4.6 s", started_at=slow.now))
    slow.store.flush()
    [warning] = slow.alerting.catch_up("home", "totp")
    assert (warning.event, warning.new_status, warning.kind) == ("degraded", "degraded", "slow")
    slow.minute(1.1, {"live": None, "ready": None})
    [down] = slow.minute(2, {"live": None, "ready": None, "totp": "otp_mismatch"})
    assert (down.event, down.old_status, down.kind) == ("down", "degraded", "otp_mismatch")


def test_an_upgrade_keeps_what_was_alerted_check_by_check_and_alerts_it_not_again(tmp_path):
    rig = Rig(tmp_path, failure_threshold=1, success_threshold=1)
    rig.minute(0, {c: None for c in ALL})
    rig.minute(1, {c: "connect" for c in ALL})
    rig.store.close()
    # the database as the release before incidents left it: alert state per check only
    conn = sqlite3.connect(tmp_path / "monitor.db")
    with conn:
        conn.execute("drop table alert_incidents")
        conn.execute("alter table alert_events drop column checks")
        conn.execute(
            "delete from _sqlite_migrations where migration_set = 'alerts' and name = 'm002_incidents'"
        )
        conn.execute("delete from outbox")
        conn.execute("delete from alert_events")
    conn.close()
    again = Rig(tmp_path, failure_threshold=1, success_threshold=1)
    assert again.minute(2, {c: "connect" for c in ALL}) == []  # still the same outage
    [back] = again.minute(3, {c: None for c in ALL})
    assert back.event == "resolved" and [c["check"] for c in back.checks] == ALL
    assert back.since == T0 + 60
    again.store.close()
