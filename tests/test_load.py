"""A bounded load test on 127.0.0.1: wrk on the status page and the JSON API while checks run.

The page must answer every request, and checks must keep their schedule. Figures are printed;
`MONITOR_LOAD_SECONDS=30 .venv/bin/pytest -s tests/test_load.py` gives the documented run.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess

import httpx
import pytest

from .conftest import instance_config, wait_for

SECONDS = int(os.environ.get("MONITOR_LOAD_SECONDS", "8"))


def wrk(url: str, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "--timeout", "5s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "rps": rps,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": 1 if socket_errors else 0,
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
    }


@pytest.mark.slow
def test_page_and_api_under_load_while_checks_keep_their_schedule(sim, write_config, start_monitor, tmp_path):
    assert shutil.which("wrk"), "wrk is missing: ./dev test installs the Debian package wrk"
    instances = [
        instance_config(sim.url_for(f"i{i}"), name=f"i{i}", interval="1s", timeout="1s", token=(i == 0))
        for i in range(5)
    ]
    for inst in instances[1:]:
        inst["checks"] = {"ready": {"enabled": False}}
    mon = start_monitor(write_config({"instances": instances}))
    db = tmp_path / "monitor.db"

    def runs() -> list[float]:
        conn = sqlite3.connect(db)
        try:
            return [
                r[0]
                for r in conn.execute(
                    "select started_at from results where instance = 'i1' order by started_at"
                )
            ]
        finally:
            conn.close()

    wait_for(lambda: len(runs()) >= 3, message="checks running")
    figures = {}
    for path in ("/", "/api/v1/status"):
        before = len(runs())
        figures[path] = wrk(mon.url + path, SECONDS)
        during = runs()[before:]
        gaps = [b - a for a, b in zip(during, during[1:], strict=False)]
        figures[path]["checks"] = len(during)
        figures[path]["max_gap_s"] = max(gaps) if gaps else float("inf")
    lags = re.findall(
        r"^twofauth_monitor_scheduler_lag_max_seconds ([\d.e+-]+)$",
        httpx.get(mon.url + "/metrics", timeout=5).text,
        re.M,
    )
    print(f"\nload test, {SECONDS}s per path, wrk -t2 -c16, 5 instances at 1s:")
    for path, f in figures.items():
        print(
            f"  {path:16} {f['rps']:8.0f} req/s  p99 {f['p99_ms']:.1f} ms  non-2xx {f['non_2xx']}  "
            f"checks of i1 during load {f['checks']}  max gap {f['max_gap_s']:.2f}s"
        )
    if lags:
        print(f"  largest scheduling lag among recent runs: {float(lags[0]):.3f}s")
    for path, f in figures.items():
        assert f["non_2xx"] == 0 and f["socket_errors"] == 0, (path, f)
        assert f["rps"] > 20, (path, f)
        assert f["checks"] >= SECONDS * 0.6, (path, f)  # 1 s interval kept under load
        assert f["max_gap_s"] < 2.5, (path, f)
    assert mon.proc.poll() is None
