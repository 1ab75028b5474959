"""`2fauth-monitor demo` as a newcomer runs it: simulated instances, seeded history, the page."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx

from monitor.demo import DEMO_NOTICE
from tests.conftest import ROOT, free_port, wait_for


def test_the_demo_page_says_it_is_a_demo(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "demo", "--listen", listen, "--db", str(tmp_path / "demo.db")],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        try:

            def page() -> httpx.Response | None:
                assert proc.poll() is None, log.read_text(errors="replace")
                try:
                    response = httpx.get(f"http://{listen}/", timeout=5)
                except httpx.HTTPError:
                    return None
                return response if response.status_code == 200 else None

            index = wait_for(page, timeout=60, message="the demo's status page")
            assert f'<p class="notice">{DEMO_NOTICE}</p>' in index.text
            instance = httpx.get(f"http://{listen}/instances/flaky", timeout=5)
            assert f'<p class="notice">{DEMO_NOTICE}</p>' in instance.text
            assert httpx.get(f"http://{listen}/api/v1/status", timeout=5).json()["notice"] == DEMO_NOTICE
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, log.read_text(errors="replace")
