"""Hostile receivers: a webhook or Apprise `json://` receiver that answers with a decompression
bomb, 300 MB, or one byte every half second. Each delivery ends within the notifier's timeout with
one clear line, and the sending process stays small (`test-alert`, a real process, loopback only)."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from .conftest import ROOT
from .hostile import HostileTwoFAuth

TIMEOUT = 2.0
PEAK_RSS_MB = 150


@pytest.fixture(scope="module")
def receiver():
    with HostileTwoFAuth() as server:
        server.bomb(1), server.bomb(2)
        yield server


def test_alert(path) -> tuple[str, float, float]:
    """`test-alert` in a new process: (its output, seconds taken, peak RSS in MB)."""
    code = (
        "import re, sys\n"
        "from monitor.cli import main\n"
        "rc = main(['test-alert', '--config', sys.argv[1]])\n"
        "print('MAXRSS', re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
    )
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    took = time.monotonic() - started
    out = proc.stdout
    assert "MAXRSS" in out, proc.stderr[-3000:]
    return out[: out.rindex("MAXRSS")], took, int(out.rsplit("MAXRSS", 1)[1]) / 1024


test_alert.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.mark.parametrize(
    ("kind", "attack", "expected"),
    [
        ("webhook", "hook-bomb", "HTTP 500: (reply not read: body inflates to more than 64 KiB"),
        ("webhook", "hook-twice", "HTTP 500: (reply not read: the body is encoded 2 times"),
        ("webhook", "hook-huge", "HTTP 500: (reply not read: body larger than 64 KiB"),
        ("webhook", "hook-drip", f"no answer within {TIMEOUT:g}s"),
        ("apprise", "hook-bomb", "not delivered"),
        ("apprise", "hook-huge", "not delivered"),
        ("apprise", "hook-drip", f"no answer within {TIMEOUT:g}s"),
    ],
)
def test_a_hostile_receiver_is_bounded_in_time_and_memory(receiver, write_config, kind, attack, expected):
    url = f"{receiver.url}/{attack}" if kind == "webhook" else f"json://127.0.0.1:{receiver.port}/{attack}"
    path = write_config(
        {
            "instances": [{"name": "home", "url": "http://127.0.0.1:9"}],
            "notifiers": [{"name": "ops", "type": kind, "url": url, "timeout": f"{TIMEOUT:g}s"}],
        }
    )
    out, took, rss = test_alert(path)
    assert out.startswith("ops: not delivered"), out
    assert expected in out, out
    assert len(out.strip().splitlines()) == 1
    assert took < TIMEOUT + 4, f"test-alert took {took:.1f}s with a {TIMEOUT:g}s timeout"
    assert rss < PEAK_RSS_MB, f"peak RSS {rss:.0f} MB"
    assert not re.search("[\x00-\x08\x0b-\x1f]", out)
