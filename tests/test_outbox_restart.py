"""End to end: the monitor as a real process against the simulator, killed with SIGKILL while
alerts are written but not sent, and again while they are being sent; after the restarts every
alert arrives, in order, and none twice once the receiver drops repeats by id. 2FAuth down fails
all three checks: that is one incident, so one down alert naming the three and one recovery."""

from __future__ import annotations

import json
import signal
import sqlite3
import time

import httpx

from .conftest import instance_config, wait_for
from .receiver import SECRET, Receiver, verify

CHECKS = {"live", "ready", "totp"}
PENDING = 'twofauth_monitor_alert_deliveries{notifier="ops",state="pending"} 1.0'


def outbox(db: str) -> list[tuple]:
    """(the event's checks, event, state, attempts) of each delivery."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute(
                "select e.checks, e.event, o.state, o.attempts from outbox o "
                "join alert_events e on e.id = o.event_id order by o.id"
            ).fetchall()
            return [(frozenset(c["check"] for c in json.loads(cs or "[]")), *rest) for cs, *rest in rows]
    except sqlite3.OperationalError:
        return []  # not created yet


def test_sigkill_between_writing_and_sending_loses_no_alert_and_duplicates_none(
    sim, write_config, start_monitor, tmp_path
):
    receiver = Receiver()
    receiver.down()
    db = str(tmp_path / "monitor.db")
    path = write_config(
        {
            "storage": {"path": db},
            "instances": [instance_config(sim.url, "home", interval="1s", timeout="1s")],
            "notifiers": [
                {
                    "name": "ops",
                    "type": "webhook",
                    "url": receiver.url + "/hook",
                    "secret": SECRET,
                    "timeout": "30s",
                }
            ],
            "alerts": {
                "failure_threshold": 1,
                "success_threshold": 1,
                "delivery": {"backoff_initial": "100ms", "backoff_max": "300ms"},
            },
        }
    )
    try:
        # 1. 2FAuth down, the receiver down: the alerts are written and tried, never sent; SIGKILL.
        sim.set_faults(["down"])
        monitor = start_monitor(path)
        wait_for(
            lambda: [(c, e, s) for c, e, s, n in outbox(db) if n >= 1] == [(CHECKS, "down", "pending")],
            timeout=20,
            message="one down alert for the three checks, tried and pending",
        )
        scrape = httpx.get(monitor.url + "/metrics")
        if scrape.status_code != 404:  # /metrics comes with the status page
            wait_for(lambda: PENDING in httpx.get(monitor.url + "/metrics").text, timeout=5, message=PENDING)
            assert 'outcome="retry"' in scrape.text and SECRET not in scrape.text
        assert monitor.stop(signal.SIGKILL) == -signal.SIGKILL

        # 2. The receiver takes requests but never answers; 2FAuth recovers; SIGKILL mid-send.
        receiver.hang = True
        receiver.up()
        monitor = start_monitor(path)
        wait_for(lambda: len(receiver.requests) >= 1, timeout=20, message="the pending alert sent again")
        sim.set_faults([])
        wait_for(
            lambda: [e for c, e, s, n in outbox(db)] == ["down", "resolved"],
            timeout=20,
            message="the resolved alert written",
        )
        assert monitor.stop(signal.SIGKILL) == -signal.SIGKILL

        # 3. The receiver answers again: everything arrives.
        receiver.hang = False
        receiver.release.set()
        monitor = start_monitor(path)
        wait_for(
            lambda: (
                [(c, e, s) for c, e, s, n in outbox(db)]
                == [(CHECKS, "down", "delivered"), (CHECKS, "resolved", "delivered")]
            ),
            timeout=20,
            message="every alert delivered",
        )
        assert monitor.stop() == 0
        assert "Traceback" not in monitor.output()
    finally:
        receiver.stop()

    requests = list(receiver.requests)
    assert all(verify(SECRET, r["headers"], r["body"], time.time()) for r in requests)
    seen: dict[str, dict] = {}
    for r in requests:
        body = json.loads(r["body"])
        assert r["headers"]["x-monitor-delivery"] == body["id"]
        seen.setdefault(body["id"], body)
    unique = list(seen.values())
    assert len(requests) > len(unique)  # the sends cut short by SIGKILL came again, with the same id
    assert [(b["event"], b["check"]) for b in unique] == [("down", "live"), ("resolved", "live")]
    assert [[c["check"] for c in b["checks"]] for b in unique] == [["live", "ready", "totp"]] * 2
    assert [c["consequence_of"] for c in unique[0]["checks"]] == [None, "live", "live"]
