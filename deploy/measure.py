"""Measure the memory and CPU of `2fauth-monitor run`, to size container requests and limits.

    .venv/bin/python deploy/measure.py [--instances 5] [--interval 10s] [--seconds 60]

Starts the 2FAuth simulator on loopback, runs the monitor watching N simulated instances with
every check on (live, ready, TOTP with a stored canary), fetches its own pages once a second, and
prints peak resident memory (VmHWM) and average CPU. Linux only (reads /proc). Loopback only,
bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from monitor import simulator


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=5)
    parser.add_argument("--interval", default="10s")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()

    sim = simulator.start_in_thread()
    with tempfile.TemporaryDirectory() as tmp:
        instances = [
            {
                "name": f"site{i}",
                "url": sim.url_for(f"site{i}"),
                "interval": args.interval,
                "timeout": "5s",
                "token": simulator.DEFAULT_TOKEN,
                "checks": {
                    "totp": {
                        "canary_secret": simulator.DEFAULT_CANARY_SECRET,
                        "account_id": simulator.CANARY_ACCOUNT_ID,
                    }
                },
            }
            for i in range(args.instances)
        ]
        config = Path(tmp, "monitor.yaml")
        config.write_text(yaml.safe_dump({"storage": {"path": f"{tmp}/monitor.db"}, "instances": instances}))
        port = _free_port()
        env = {**os.environ, "MONITOR_LISTEN": f"127.0.0.1:{port}", "PYTHONDONTWRITEBYTECODE": "1"}
        log = Path(tmp, "monitor.log")
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(config)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    sys.exit(f"the monitor exited with {proc.returncode}:\n{log.read_text()}")
                try:
                    httpx.get(base + "/live", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)
            cpu0, t0 = _cpu_seconds(proc.pid), time.monotonic()
            rss_samples = []
            codes: dict[str, int] = {}
            while time.monotonic() - t0 < args.seconds and proc.poll() is None:
                for path in ("/", "/ready"):
                    with contextlib.suppress(httpx.HTTPError):
                        codes[path] = httpx.get(base + path, timeout=5).status_code
                rss_samples.append(_status_kib(proc.pid, "VmRSS"))
                time.sleep(1)
            cpu = _cpu_seconds(proc.pid) - cpu0
            elapsed = time.monotonic() - t0
            peak = _status_kib(proc.pid, "VmHWM")
        finally:
            proc.terminate()
            proc.wait(15)
            sim.stop()
        with sqlite3.connect(f"{tmp}/monitor.db") as conn:
            rows = conn.execute("SELECT count(*) FROM results").fetchone()[0]
        db_bytes = Path(tmp, "monitor.db").stat().st_size
    print(
        f"instances={args.instances} interval={args.interval} seconds={elapsed:.0f}: "
        f"rss steady={rss_samples[-1] / 1024:.0f}MiB peak(VmHWM)={peak / 1024:.0f}MiB "
        f"cpu avg={1000 * cpu / elapsed:.1f}m (millicores); last answers {codes}; "
        f"database {db_bytes / 1024:.0f}KiB for {rows} results ({db_bytes / max(rows, 1):.0f} bytes each)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
