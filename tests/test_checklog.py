"""The log of check results: each check's first result, every change of status or cause, nothing
for a run like the last, and WARNING only for problems."""

from __future__ import annotations

import logging
import re

from monitor.checklog import ResultLog
from monitor.models import Kind, Result, Status

from .conftest import instance_config, wait_for


def result(status: str, kind: Kind | None = None, message: str = "", check: str = "totp") -> Result:
    return Result(
        "home", check, Status(status), kind, message, latency_ms=41.6, path="/api/v1/twofaccounts/otp"
    )


def lines(caplog) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "monitor.results"]


def test_first_result_then_only_changes_of_status_or_cause(caplog):
    caplog.set_level(logging.INFO)
    log = ResultLog()
    log.note(result("up"))
    log.note(result("up"))
    log.note(result("down", Kind.CONNECT, "connection to 2fauth.example.com:443 refused"))
    log.note(result("down", Kind.CONNECT, "connection to 2fauth.example.com:443 refused"))
    log.note(result("down", Kind.AUTH, "GET /api/v1/user answered 401"))
    log.note(result("degraded", Kind.SLOW, "answered correctly in 3.20s"))
    log.note(result("up"))
    assert lines(caplog) == [
        ("INFO", "home/totp first result: up in 42ms (/api/v1/twofaccounts/otp)"),
        ("WARNING", "home/totp up -> down (connect: connection to 2fauth.example.com:443 refused)"),
        ("WARNING", "home/totp down -> down (connect -> auth: GET /api/v1/user answered 401)"),
        ("WARNING", "home/totp down -> degraded (auth -> slow: answered correctly in 3.20s)"),
        ("INFO", "home/totp degraded -> up (was slow)"),
    ]


def test_a_first_result_that_is_down_is_a_warning_with_its_cause(caplog):
    caplog.set_level(logging.INFO)
    ResultLog().note(result("down", Kind.MAINTENANCE, "GET /up answered 503: 2FAuth is in maintenance mode"))
    assert lines(caplog) == [
        (
            "WARNING",
            "home/totp first result: down (maintenance: GET /up answered 503: 2FAuth is in maintenance mode)",
        )
    ]


def test_inside_a_maintenance_window_nothing_is_a_warning(caplog):
    caplog.set_level(logging.INFO)
    log = ResultLog()
    log.note(result("up"))
    log.note(result("down", Kind.MAINTENANCE, "in maintenance"), maintenance=True)
    assert lines(caplog)[-1] == (
        "INFO",
        "home/totp up -> down (maintenance: in maintenance) (in a maintenance window)",
    )


def test_a_long_message_is_shortened_to_one_line(caplog):
    caplog.set_level(logging.INFO)
    ResultLog().note(result("down", Kind.BAD_RESPONSE, "x" * 500 + "\n tail"))
    (_, line), = lines(caplog)  # fmt: skip
    assert len(line) < 260 and line.endswith("…)")


def test_forget_starts_an_instance_over(caplog):
    caplog.set_level(logging.INFO)
    log = ResultLog()
    log.note(result("up"))
    log.forget("home")
    log.note(result("up"))
    assert [text for _, text in lines(caplog)].count(
        "home/totp first result: up in 42ms (/api/v1/twofaccounts/otp)"
    ) == 2


def test_a_running_monitor_logs_first_results_and_each_change_of_cause_once(sim, write_config, start_monitor):
    mon = start_monitor(write_config({"instances": [instance_config(sim.url, interval="1s", timeout="1s")]}))
    for check in ("live", "ready", "totp"):
        wait_for(
            lambda c=check: f"home/{c} first result: up" in mon.output(), message=f"{check} first result"
        )
    sim.set_faults(["maintenance"])
    for check in ("live", "ready"):
        wait_for(
            lambda c=check: f"home/{c} up -> down (maintenance:" in mon.output(), message=f"{check} down"
        )
    sim.set_faults(["db_down"])  # the web server answers again, the API fails: another cause
    wait_for(lambda: "home/ready down -> down (maintenance -> server_error:" in mon.output(), message="cause")
    sim.set_faults([])
    wait_for(lambda: "home/ready down -> up (was server_error)" in mon.output(), message="recovery")
    assert mon.stop() == 0
    log = mon.output()
    assert log.count("home/ready up -> down (maintenance:") == 1  # once, however many runs it lasted
    assert log.count("home/ready first result") == 1
    for line in log.splitlines():
        if re.search(r" WARNING ", line):
            assert "-> up" not in line and "first result: up" not in line, line
        if "home/ready down -> up" in line or "first result: up" in line:
            assert " INFO " in line, line
