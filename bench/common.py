"""What every benchmark shares: child processes that are always stopped, their CPU and memory from
/proc, the machine, percentiles, and a loopback simulator and monitor to measure.

Every process a benchmark starts goes through `Procs`, a context manager that stops them all
(SIGTERM, then SIGKILL after a grace period) however the benchmark ends. Traffic only ever goes
to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"


class BenchError(Exception):
    """A benchmark could not make its measurement (as opposed to a slow figure)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll `predicate` until it returns something truthy; BenchError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the thing polled is not there yet
            last = exc
        time.sleep(every)
    raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}" + (f" ({last})" if last else ""))


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


# --- /proc ---------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (utime + stime in /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def proc_status_kb(pid: int, key: str) -> int:
    """A `kB` line of /proc/PID/status, e.g. VmHWM (peak resident set) or VmRSS."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise BenchError(f"no {key} in /proc/{pid}/status")


def machine() -> dict[str, str]:
    """nproc, memory (free -h) and the CPU model, for the record."""
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    free = subprocess.run(["free", "-h"], capture_output=True, text=True, check=False).stdout
    mem = next((ln.split()[1] for ln in free.splitlines() if ln.startswith("Mem:")), "?")
    return {"nproc": str(os.cpu_count()), "memory": mem, "cpu": model, "python": sys.version.split()[0]}


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100), nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


# --- child processes -----------------------------------------------------------------------------


class Proc:
    """A child process whose output goes to a log file (read on failure)."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.popen = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
        )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self, tail: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def check_alive(self) -> bool:
        """Raise BenchError when the process has exited; else False, so polls read
        `proc.check_alive() or condition`."""
        if not self.alive():
            raise BenchError(f"{self.name} exited with {self.popen.returncode}: {self.output()}")
        return False

    def stop(self, grace: float = 10.0) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()


class Procs(contextlib.ExitStack):
    """Starts child processes and stops every one of them on exit, even on errors."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.dir = Path(self.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-{prefix}-")))

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        proc = Proc(name, argv, self.dir, env)
        self.callback(proc.stop)
        return proc

    def simulator(self, name: str = "simulator") -> tuple[Proc, str]:
        """A 2FAuth simulator (`python -m monitor simulate`) on a free loopback port; (proc, base URL)."""
        port = free_port()
        proc = self.start(
            name, [PY, "-m", "monitor", "simulate", "--host", HOST, "--port", str(port), "--throttle", "0"]
        )
        url = f"http://{HOST}:{port}"
        wait_until(lambda: proc.check_alive() or http_ok(url + "/up"), 20, f"{name} on {url}")
        return proc, url

    def monitor(
        self, config: dict[str, Any], name: str = "monitor", stats_file: Path | None = None
    ) -> tuple[Proc, str]:
        """`2fauth-monitor run` on a config; with `stats_file`, the same process plus the stats hook
        of bench/monitor_proc.py (SIGUSR1 appends a snapshot of its stats to that file)."""
        port = free_port()
        config = {**config, "web": {**config.get("web", {}), "listen": f"{HOST}:{port}"}}
        path = self.dir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        if stats_file is None:
            argv = [PY, "-m", "monitor", "run", "--config", str(path), "--log-level", "warning"]
            env = None
        else:
            argv = [PY, str(ROOT / "bench" / "monitor_proc.py"), str(path)]
            # the script's own folder is first on its path: this checkout's `monitor` must come
            # before any installed one, as it does for `-m monitor` run from ROOT
            env = {"BENCH_STATS": str(stats_file), "PYTHONPATH": str(ROOT)}
        proc = self.start(name, argv, env)
        url = f"http://{HOST}:{port}"
        wait_until(lambda: proc.check_alive() or http_ok(url + "/live"), 120, f"{name} on {url}")
        return proc, url


def live_instances(names: Sequence[str], base_urls: Sequence[str], interval: float) -> list[dict[str, Any]]:
    """Instances with only the live check on `/up`, spread over simulators' `/s/<name>` sub-paths."""
    return [
        {
            "name": name,
            "url": f"{base_urls[i % len(base_urls)]}/s/{name}",
            "interval": f"{interval:g}s",
            "timeout": f"{min(interval, 5.0):g}s",
            "checks": {"live": {"path": "/up"}, "ready": {"enabled": False}, "totp": {"enabled": False}},
        }
        for i, name in enumerate(names)
    ]


def count_rows(db: Path, table: str = "results") -> int:
    """Rows in a table of a monitor's database, read through a separate read-only connection."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return int(conn.execute(f"select count(*) from {table}").fetchone()[0])
    finally:
        conn.close()


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """`with timed() as t:` ... `t[0]` is the elapsed seconds afterwards."""
    out: list[float] = []
    started = time.perf_counter()
    try:
        yield out
    finally:
        out.append(time.perf_counter() - started)
