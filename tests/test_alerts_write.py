"""Alerting evaluates inside the store's write of results (the scheduler's group commit): the
results and the alerts they make are committed together, a failure of alerting's part loses no
result, and a failed write makes no alert that the retried write then makes twice.

A real SQLite file, the real engine and outbox worker, and a receiver on loopback.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.alerts import engine
from monitor.alerts.incident import Incident
from monitor.models import Kind, Result, Status

from .test_outbox import T0, Rig, make_settings


@pytest.fixture
async def rig(tmp_path, receiver):  # noqa: F811
    r = Rig(make_settings(tmp_path, receiver.url))
    r.store.on_write(r.alerting.in_write)
    yield r
    await r.close()


def record(rig: Rig, instance: str, status: str, minute: float) -> None:
    kind = None if status == "up" else Kind.TIMEOUT
    rig.store.record(
        Result(instance, "live", Status(status), kind, f"{status} at {minute}", started_at=T0 + minute * 60)
    )


def fail_writes(conn: sqlite3.Connection, rows: list) -> None:
    raise sqlite3.OperationalError("disk I/O error")


async def test_one_write_makes_the_alerts_of_every_result_in_it(rig, receiver):  # noqa: F811
    record(rig, "home", "up", 0)
    record(rig, "work", "up", 0)
    assert rig.store.flush()
    assert rig.rows("select count(*) from alert_events") == [(0,)]
    record(rig, "home", "down", 1)
    record(rig, "work", "down", 1)
    record(rig, "home", "up", 2)
    assert rig.store.flush()
    # one transaction held three results: home went down and came back, work went down
    assert rig.rows("select instance, event from alert_events order by instance, id") == [
        ("home", "down"),
        ("home", "resolved"),
        ("work", "down"),
    ]
    assert rig.rows("select count(*) from results") == [(5,)]
    await rig.rounds(3)
    bodies = receiver.bodies()
    assert [b["event"] for b in bodies if b["instance"] == "home"] == ["down", "resolved"]
    assert [b["event"] for b in bodies if b["instance"] == "work"] == ["down"]


async def test_a_failed_write_makes_no_alert_and_the_retried_write_makes_it_once(rig, receiver):  # noqa: F811
    rig.store.on_write(fail_writes)  # the transaction fails after alerting has written its part
    record(rig, "home", "down", 0)
    assert not rig.store.flush()
    assert rig.rows("select count(*) from results") == [(0,)]
    assert rig.rows("select count(*) from alert_events") == [(0,)]
    assert rig.alerting.states == {}  # what it decided is forgotten with the write
    rig.store.writer.hooks.remove(fail_writes)
    assert rig.store.flush()  # the queued result, written again
    assert rig.rows("select instance, event from alert_events") == [("home", "down")]
    await rig.rounds(2)
    assert [(b["instance"], b["event"]) for b in receiver.bodies()] == [("home", "down")]


async def test_alerting_that_cannot_write_loses_no_result_and_alerts_later(rig, receiver, caplog):  # noqa: F811
    rig.store.db.conn.execute(
        "create trigger refuse before insert on outbox begin select raise(abort, 'disk full'); end"
    )
    with caplog.at_level(logging.ERROR, logger="monitor.alerts"):
        record(rig, "home", "down", 0)
        assert rig.store.flush()  # the results are written all the same
    assert rig.rows("select count(*) from results") == [(1,)]
    assert rig.rows("select count(*) from alert_state") == [(0,)]  # alerting's part rolled back
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("cannot write the alert state of home/live: disk full")
    rig.store.db.conn.execute("drop trigger refuse")
    record(rig, "home", "down", 1)  # the next result: the first one is read again with it
    assert rig.store.flush()
    assert rig.rows("select instance, event, since from alert_events") == [("home", "down", T0)]
    await rig.rounds(2)
    assert [(b["instance"], b["event"]) for b in receiver.bodies()] == [("home", "down")]


RUN = st.lists(
    st.tuples(
        st.sampled_from(["home", "work"]),
        st.sampled_from(["live", "totp"]),
        st.sampled_from(["up", "up", "up", "down", "degraded"]),
    ),  # fmt: skip
    min_size=1,
    max_size=40,
)


def replay(tmp_path, name: str, run, quiet: bool) -> tuple[list, dict]:
    """The results of `run`, a minute apart, written two at a time through the engine."""
    settings = make_settings(tmp_path / name, "http://127.0.0.1:9", failure_threshold=2, remind_every="3m")
    rig = Rig(settings)
    rig.store.on_write(rig.alerting.in_write)
    try:
        with mock.patch.object(engine, "_quiet", engine._quiet if quiet else lambda *a: False):
            for i, (instance, check, status) in enumerate(run):
                kind = None if status == "up" else Kind.TIMEOUT
                rig.store.record(
                    Result(instance, check, Status(status), kind, status, started_at=T0 + i * 60)
                )
                if i % 2:
                    rig.store.flush()
            rig.store.flush()
        events = rig.rows(
            'select instance, "check", event, old_status, new_status, since, at, checks from alert_events'
        )
        states = {k: s.to_dict() for k, s in rig.alerting.states.items()}
        # an instance that never had a problem has no incident, or a new one: the same
        open_ = {k: i.to_dict() for k, i in rig.alerting.incidents.items() if i != Incident(k)}
        stored = rig.rows("select instance, data from alert_incidents order by instance")
        return events, {"states": states, "incidents": open_, "stored": stored}
    finally:
        rig.store.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(run=RUN)
def test_the_quiet_shortcut_decides_what_the_full_evaluation_decides(tmp_path, run):
    """Steady up results skip the incident's evaluation: the alerts and states are the same."""
    name = str(uuid.uuid4())
    assert replay(tmp_path, name + "-quick", run, True) == replay(tmp_path, name + "-full", run, False)
