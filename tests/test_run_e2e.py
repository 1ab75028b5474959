"""`2fauth-monitor run` as a real process against the simulator: history, reload, stop, secrets."""

from __future__ import annotations

import json
import signal
import sqlite3
import time

import httpx
import yaml

from monitor import simulator

from .conftest import instance_config, wait_for


def rows(db, sql, *args):
    conn = sqlite3.connect(db)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()


def test_run_records_history_and_state_changes(sim, write_config, start_monitor, tmp_path):
    path = write_config({"instances": [instance_config(sim.url, interval="1s", timeout="1s")]})
    db = tmp_path / "monitor.db"
    mon = start_monitor(path)
    wait_for(lambda: len(rows(db, "select * from results where status = 'up'")) >= 6, message="first results")
    sim.set_faults(["wrong_codes"])
    wait_for(
        lambda: rows(db, "select * from incidents where \"check\" = 'totp' and ended_at is null"),
        message="an open totp incident",
    )
    sim.set_faults([])
    wait_for(
        lambda: rows(db, "select * from incidents where ended_at is not null"), message="incident closed"
    )
    incident = rows(db, "select * from incidents")[0]
    assert (incident["check"], incident["status"], incident["kind"]) == ("totp", "down", "otp_mismatch")
    assert mon.stop() == 0
    log = mon.output()
    assert "home/totp up -> down (otp_mismatch" in log
    assert "home/totp down -> up" in log
    assert "Traceback" not in log
    checks = {r["check"] for r in rows(db, 'select distinct "check" from results')}
    assert checks == {"live", "ready", "totp"}


def test_monitor_serves_its_own_live_and_ready(sim, write_config, start_monitor):
    mon = start_monitor(write_config({"instances": [instance_config(sim.url, interval="1s", timeout="1s")]}))
    assert httpx.get(mon.url + "/live").status_code == 200
    ready = wait_for(
        lambda: (r := httpx.get(mon.url + "/ready")).status_code == 200 and r, message="/ready 200"
    )
    assert ready.headers["content-type"].startswith("application/health+json")
    assert ready.json()["status"] == "pass"


def test_sighup_applies_a_valid_config_and_refuses_an_invalid_one(sim, write_config, start_monitor, tmp_path):
    first = {"instances": [instance_config(sim.url, interval="1s", timeout="1s", token=False)]}
    path = write_config(first)
    db = tmp_path / "monitor.db"
    mon = start_monitor(path)
    wait_for(lambda: rows(db, "select * from results where instance = 'home'"), message="home results")

    second = {
        "storage": {"path": str(db)},
        "instances": [
            *first["instances"],
            instance_config(sim.url_for("office"), name="office", interval="1s", timeout="1s"),
        ],
    }
    path.write_text(yaml.safe_dump(second))
    mon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: rows(db, "select * from results where instance = 'office'"), message="office results")
    assert "added instance office" in mon.output()

    path.write_text("instances:\n  - name: home\n    url: http://x\n    intervall: 1s\n")
    mon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in mon.output(), message="reload refused")
    count = len(rows(db, "select * from results where instance = 'office'"))
    wait_for(
        lambda: len(rows(db, "select * from results where instance = 'office'")) > count,
        message="office still checked after a refused reload",
    )
    assert "instances[0].intervall: unknown key" in mon.output()
    assert mon.proc.poll() is None


def test_sigterm_finishes_in_flight_checks_quickly(sim, write_config, start_monitor, tmp_path):
    sim.set_faults(["slow"], delay=2)
    inst = instance_config(sim.url, interval="30s", timeout="5s", token=False)
    inst["checks"] = {"ready": {"enabled": False}}
    mon = start_monitor(write_config({"instances": [inst]}))
    wait_for(lambda: sim.state()["counters"]["requests"].get("/live", 0) >= 1, message="a check in flight")
    started = time.monotonic()
    assert mon.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 10  # Docker's default grace period
    assert "stopped" in mon.output()
    conn = sqlite3.connect(tmp_path / "monitor.db")
    assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    (latency,) = conn.execute("select latency_ms from results where \"check\" = 'live'").fetchone()
    assert latency >= 2000  # the run in flight at SIGTERM was finished and written, not cancelled


def test_no_secret_in_logs_database_or_json_output(sim, write_config, start_monitor, tmp_path):
    inst = instance_config(sim.url, interval="1s", timeout="1s")
    path = write_config({"instances": [inst]})
    db = tmp_path / "monitor.db"
    mon = start_monitor(path, env={})
    sim.set_faults(["wrong_codes"])
    wait_for(lambda: rows(db, "select * from incidents"), message="an incident")
    sim.set_faults(["rate_limited"])
    wait_for(lambda: rows(db, "select * from results where kind = 'rate_limited'"), message="rate limited")
    mon.stop()
    secrets = [simulator.DEFAULT_TOKEN, simulator.DEFAULT_CANARY_SECRET]
    blobs = [mon.output().encode()]
    for suffix in ("", "-wal", "-shm"):
        f = tmp_path / f"monitor.db{suffix}"
        if f.exists():
            blobs.append(f.read_bytes())
    for blob in blobs:
        for secret in secrets:
            assert secret.encode() not in blob
            assert secret[:12].encode() not in blob
    steps = [json.loads(r["steps"]) for r in rows(db, "select steps from results where steps is not null")]
    assert any(s for s in steps)  # failures keep their steps
