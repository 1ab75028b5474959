"""Hostile targets: each misbehaviour yields its error kind within the timeout, memory stays bounded,
the token never follows a redirect to another host, and other checks keep their schedule."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time

import pytest

from monitor import config, simulator
from monitor.scheduler import run_all_once

from .conftest import ROOT, instance_config, wait_for
from .hostile import HostileServer, StallingTLSServer

TIMEOUT = 2.0


@pytest.fixture(scope="module")
def recorder():
    """Another origin that records what reaches it (the token must never)."""
    with HostileServer() as server:
        yield server


@pytest.fixture(scope="module")
def hostile(recorder):
    with HostileServer(redirect_target=recorder.url) as server:
        yield server


def live_result(url: str, path: str, **extra):
    inst = instance_config(
        url, token=False, interval="5s", timeout=f"{TIMEOUT}s", checks={"live": {"path": path}}, **extra
    )
    inst["checks"]["ready"] = {"enabled": False}
    settings = config.from_mapping({"instances": [inst]}, env={})
    started = time.monotonic()
    (result,) = asyncio.run(run_all_once(settings))
    return result, time.monotonic() - started


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/endless", "bad_response"),
        ("/big", "bad_response"),
        ("/drip", "timeout"),
        ("/huge-header", "connect"),
        ("/malformed", "connect"),
        ("/invalid-json", "bad_response"),
        ("/loop-redirect", "bad_response"),
        ("/cross-redirect", "http_status"),
        ("/reset", "connect"),
        ("/stall", "timeout"),
    ],
)
def test_each_misbehaviour_has_its_kind_within_the_timeout(hostile, path, kind):
    result, elapsed = live_result(hostile.url, path)
    assert (str(result.status), str(result.kind)) == ("down", kind), result.message
    assert elapsed < TIMEOUT + 1.0
    assert "\n" not in result.message


def test_invalid_utf8_in_a_health_body_is_read_not_crashed_on(hostile):
    result, _ = live_result(hostile.url, "/invalid-utf8")
    # the JSON is valid apart from its bytes; the check either reads the status or names the body bad
    assert (str(result.status), result.kind) in (("up", None), ("down", "bad_response")), result.message


def test_stalled_tls_handshake_times_out():
    with StallingTLSServer() as server:
        result, elapsed = live_result(f"https://127.0.0.1:{server.port}", "/up")
    assert (str(result.status), str(result.kind)) == ("down", "timeout")
    assert elapsed < TIMEOUT + 1.0


def test_token_never_follows_a_redirect_to_another_host(hostile, recorder):
    inst = instance_config(hostile.url, interval="5s", timeout="2s")
    inst["checks"].update({"live": {"enabled": False}, "ready": {"enabled": False}})
    settings = config.from_mapping({"instances": [inst]}, env={})
    before = len(recorder.requests)
    (result,) = asyncio.run(run_all_once(settings))
    assert (str(result.status), str(result.kind)) == ("down", "http_status")
    assert "another host" in result.message
    sent = [headers for _, headers in hostile.requests if "authorization" in headers]
    assert sent, "the token went to the instance itself"
    assert all("authorization" not in h for _, h in recorder.requests[before:])
    assert simulator.DEFAULT_TOKEN not in result.message


def test_memory_stays_bounded_reading_huge_bodies(hostile, write_config):
    """A 50 MB body and an endless one: the check stops at max_body, so the process stays small."""
    insts = []
    for name, path in (("big", "/big"), ("endless", "/endless")):
        inst = instance_config(
            hostile.url, name=name, token=False, timeout="3s", interval="5s", checks={"live": {"path": path}}
        )
        inst["checks"]["ready"] = {"enabled": False}
        insts.append(inst)
    path = write_config({"instances": insts})
    code = (
        "import re, sys\n"
        "from monitor.cli import main\n"
        "rc = main(['check', '--config', sys.argv[1], '--json'])\n"
        # VmHWM, not ru_maxrss: Linux carries the parent's high-water mark across fork and exec
        "print('MAXRSS', re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    out = proc.stdout
    assert "MAXRSS" in out, proc.stderr[-2000:]
    doc = json.loads(out[: out.rindex("MAXRSS")])
    assert {r["kind"] for r in doc["results"]} == {"bad_response"}
    maxrss_mb = int(out.rsplit("MAXRSS", 1)[1]) / 1024
    assert maxrss_mb < 120, f"peak RSS {maxrss_mb:.0f} MB while bodies were 50 MB and endless"


def test_other_checks_keep_their_schedule_while_one_target_misbehaves(
    hostile, sim, write_config, start_monitor, tmp_path
):
    bad = instance_config(
        hostile.url,
        name="bad",
        token=False,
        interval="2s",
        timeout="1.5s",
        checks={"live": {"path": "/drip"}, "ready": {"path": "/stall"}},
    )
    good = instance_config(sim.url, name="good", token=False, interval="1s", timeout="1s")
    good["checks"] = {"ready": {"enabled": False}}
    mon = start_monitor(write_config({"instances": [bad, good]}))
    db = tmp_path / "monitor.db"

    def times():
        conn = sqlite3.connect(db)
        try:
            return [
                r[0]
                for r in conn.execute(
                    "select started_at from results where instance = 'good' order by started_at"
                )
            ]
        finally:
            conn.close()

    wait_for(lambda: len(times()) >= 8, timeout=20, message="eight runs of the good instance")
    gaps = [b - a for a, b in zip(times(), times()[1:], strict=False)]
    assert max(gaps) < 2.0, gaps  # 1 s interval with 10% jitter, never held up by the slow target
    conn = sqlite3.connect(db)
    kinds = {r[0] for r in conn.execute("select kind from results where instance = 'bad'")}
    conn.close()
    assert kinds == {"timeout"}
    assert mon.proc.poll() is None
