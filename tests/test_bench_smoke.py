"""The benchmarks keep working: `bench/run_all.py --small` runs each one at a small size (real
processes on 127.0.0.1: simulator, blackbox_exporter, the monitor) and fails only when one breaks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.real2fauth import fixture_dir

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(180)
@pytest.mark.skipif(
    shutil.which("prometheus-blackbox-exporter") is None,
    reason="the peer benchmark needs prometheus-blackbox-exporter (./dev test installs it)",
)
def test_small_benchmarks_run_and_report_their_figures(tmp_path):
    out = tmp_path / "figures.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_all.py"), "--small", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=170,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    figures = json.loads(out.read_text())["benchmarks"]

    peer = figures["peer"]
    (side_by_side,) = peer["rounds"]
    assert side_by_side["exporter"]["succeeded"] == side_by_side["exporter"]["probes"] > 0
    assert side_by_side["monitor"]["checks"] > 0
    assert peer["ratio"]["median"] == side_by_side["ratio"] > 0

    scale = figures["scale"]["runs"][0]
    assert scale["runs"] > 0 and scale["not_up"] == 0
    assert scale["peak_rss_mb"] > 0 and scale["lag_p99_s"] >= 0

    history = figures["history"]
    assert history["rows"]["results"] > 0 and history["rows"]["rollups_daily"] > 0
    assert history["db_mb"] > 0
    for path in ("/", "/api/v1/status"):
        assert history["page"][path]["requests"] > 0


def test_a_broken_benchmark_fails_the_run(tmp_path):
    """A benchmark that cannot measure (here: the scale sizes are not numbers) exits non-zero."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_all.py"), "--only", "scale", "--scale-sizes", "many"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert run.returncode == 1
    assert "scale: BROKEN" in run.stdout


@pytest.mark.real2fauth
@pytest.mark.timeout(240)
def test_cost_to_the_real_2fauth_reports_requests_and_php_cpu(tmp_path):
    """`--only cost --small`: the monitor at its defaults for half a minute against the real 2FAuth;
    the requests come from the PHP server's access log, the CPU from its processes."""
    fixture_dir()  # fails, in one line, without the real 2FAuth fixture
    out = tmp_path / "figures.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_all.py"), "--only", "cost", "--small", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=230,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    cost = json.loads(out.read_text())["benchmarks"]["cost"]
    requests = cost["watched"]["requests"]
    # the first run of each default check reached the server: live, ready (through the API), totp
    assert requests.get("GET /up", 0) >= 1 and requests.get("GET /api/v1/twofaccounts/count", 0) >= 1
    assert requests.get("POST /api/v1/twofaccounts/otp", 0) >= 1
    assert cost["watched"]["checks"] == dict.fromkeys(("live", "ready", "totp"), "up")
    assert cost["per_request"]["GET /up"]["cpu_ms_median"] >= 0
    assert cost["hourly"]["share_of_throttle"] > 0
