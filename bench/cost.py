"""Cost to 2FAuth: what the monitor at its default settings costs a real 2FAuth server.

A fresh real 2FAuth v5.4.3 (`../shared/real-2fauth/serve start`, PHP's built-in server with four
workers) is measured three times in one run:

1. idle, for `idle_s` seconds: the CPU its php processes (the master and its workers, one process
   group) spend with nobody asking (the baseline);
2. watched: `2fauth-monitor run` with one instance at the defaults (url, token, canary secret;
   every check at the 60 s interval) for `minutes`; the requests come from the PHP server's access
   log (DIR/server.log), the CPU from /proc/<pid>/stat of the group, less the baseline;
3. each request kind alone, `samples` times, one at a time: the PHP CPU of one request.

A run of a few minutes counts the start-up's once-an-hour requests (the web page read for
discovery and the version, the release probe) in those minutes: per hour it overstates the cost.
`hourly` is the steady figure: the per-minute requests at their measured CPU, plus the once-an-hour
ones once. Goals: under 1% of one core, and under 10% of THROTTLE_API (60 a minute) per instance.
Only 127.0.0.1 is contacted; every process started is stopped.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.common import CLK_TCK, ROOT, BenchError, Procs, percentile, wait_until

SERVE = Path(os.environ.get("TWOFAUTH_FIXTURE_DIR") or ROOT.parent / "shared" / "real-2fauth") / "serve"
THROTTLE_API = 60.0  # 2FAuth's default API requests a minute per client IP
_REQUEST = re.compile(r"\[(GET|POST|PUT|PATCH|DELETE|HEAD)\] URI: (\S+)")
CORE_GOAL = 0.01
THROTTLE_GOAL = 0.10


def group_cpu(pgid: int) -> float:
    """CPU seconds of a process group: each live member's time on a CPU (/proc/PID/schedstat, in
    nanoseconds) plus what its reaped children used (cutime + cstime of /proc/PID/stat, in ticks)."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:  # field 5 of stat(5): the process group
                continue
            with open(f"/proc/{entry.name}/schedstat") as f:
                total += int(f.read().split()[0]) / 1e9
        except OSError:
            continue  # gone meanwhile
        total += (int(fields[13]) + int(fields[14])) / CLK_TCK
    return total


class Server:
    """One real 2FAuth started by `serve start` in `folder` (stopped by `stop`)."""

    def __init__(self, folder: Path) -> None:
        if not SERVE.is_file():
            raise BenchError(f"no real 2FAuth fixture at {SERVE} (set TWOFAUTH_FIXTURE_DIR)")
        self.folder = folder
        done = subprocess.run([str(SERVE), "start", str(folder)], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise BenchError(f"serve start failed: {done.stderr.strip().splitlines()[0]}")
        self.info = json.loads((folder / "instance.json").read_text())
        self.url, self.pid = self.info["url"], int(self.info["pid"])
        self.log = folder / "server.log"

    def stop(self) -> None:
        subprocess.run([str(SERVE), "stop", str(self.folder)], capture_output=True, timeout=60)

    def log_offset(self) -> int:
        return self.log.stat().st_size

    def requests_since(self, offset: int) -> Counter[str]:
        """Requests the access log shows after `offset`, by method and path (query cut)."""
        with self.log.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        return Counter(f"{m} {p.split('?')[0]}" for m, p in _REQUEST.findall(text))

    def cpu(self) -> float:
        return group_cpu(self.pid)


def _calls(server: Server) -> dict[str, dict[str, Any]]:
    """The request kinds the monitor makes: path, and whether it needs the token."""
    account = server.info["account_id"]
    return {
        "GET /up": {"path": "/up"},
        "GET /live (the web page)": {"path": "/live"},
        "GET /api/v1/twofaccounts/count": {"path": "/api/v1/twofaccounts/count", "auth": True},
        f"GET /api/v1/twofaccounts/{account}/otp": {
            "path": f"/api/v1/twofaccounts/{account}/otp",
            "auth": True,
        },
    }


def per_request_cpu(server: Server, samples: int) -> dict[str, dict[str, float]]:
    """PHP CPU of one request of each kind, asked `samples` times one after the other."""
    headers = {"Authorization": f"Bearer {server.info['token']}", "Accept": "application/json"}
    out = {}
    with httpx.Client(base_url=server.url, timeout=30.0, trust_env=False) as client:
        for name, call in _calls(server).items():
            times = []
            for _ in range(samples):
                before = server.cpu()
                started = time.perf_counter()
                response = client.get(call["path"], headers=headers if call.get("auth") else None)
                elapsed = time.perf_counter() - started
                time.sleep(0.05)  # let the worker finish its bookkeeping before reading its CPU
                if response.status_code != 200:
                    raise BenchError(f"{name} answered {response.status_code}")
                times.append((server.cpu() - before, elapsed))
            cpu = [t[0] * 1000 for t in times]
            out[name] = {
                "cpu_ms_median": round(percentile(cpu, 50), 1),
                "cpu_ms_mean": round(sum(cpu) / len(cpu), 1),
                "wall_ms_median": round(percentile([t[1] * 1000 for t in times], 50), 1),
            }
    return out


def _monitor_config(server: Server, db: Path) -> dict[str, Any]:
    """The defaults: what a user writes for one instance with the TOTP canary, and nothing else."""
    instance = {
        "name": "real",
        "url": server.url,
        "token": server.info["token"],
        "checks": {"totp": {"canary_secret": server.info["canary_secret"]}},
    }
    return {"storage": {"path": str(db)}, "instances": [instance]}


def watch(procs: Procs, server: Server, minutes: float, idle_cpu_per_s: float) -> dict[str, Any]:
    """Run the monitor on the server for `minutes`; requests and PHP CPU over that time."""
    offset, cpu0 = server.log_offset(), server.cpu()
    started = time.monotonic()
    proc, url = procs.monitor(_monitor_config(server, procs.dir / "cost.db"), name="monitor-cost")
    deadline = started + minutes * 60
    while time.monotonic() < deadline:
        proc.check_alive()  # raises when it stopped
        time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
    status = httpx.get(url + "/api/v1/status", timeout=10, trust_env=False).json()
    proc.stop()
    elapsed = time.monotonic() - started
    cpu = server.cpu() - cpu0 - idle_cpu_per_s * elapsed
    requests = server.requests_since(offset)
    api = sum(n for path, n in requests.items() if " /api/" in path)
    return {
        "seconds": round(elapsed, 1),
        "requests": dict(requests.most_common()),
        "requests_per_min": round(sum(requests.values()) / elapsed * 60, 2),
        "api_requests_per_min": round(api / elapsed * 60, 2),
        "php_cpu_s": round(cpu, 2),
        "php_cpu_s_per_hour": round(cpu / elapsed * 3600, 1),
        "share_of_one_core": round(cpu / elapsed, 5),
        "checks": _statuses(status),
    }


def _statuses(status: Any) -> dict[str, str]:
    """Each check's status as the monitor's API shows it, so a run that failed is seen."""
    found: dict[str, str] = {}
    for inst in status.get("instances", []) if isinstance(status, dict) else []:
        for check in inst.get("checks", []):
            found[check.get("name", "?")] = check.get("status", "?")
    return found


def hourly(watched: dict[str, Any], unit: dict[str, dict[str, float]], minutes: float) -> dict[str, Any]:
    """Steady state per hour: requests seen every minute, at their measured CPU, plus the others once."""
    per_minute = {p: n for p, n in watched["requests"].items() if n >= minutes * 0.8}
    once = {p: n for p, n in watched["requests"].items() if p not in per_minute}
    cost = {name.split(" (")[0]: v["cpu_ms_median"] for name, v in unit.items()}
    web_page = cost["GET /live"]  # /live, /ready, / and an unknown path render the web app on v5
    api = [v for name, v in cost.items() if " /api/" in name]

    def ms(path: str) -> float:  # a request not sampled costs what its kind costs
        if path in cost:
            return cost[path]
        return sum(api) / len(api) if " /api/" in path and "release-probe" not in path else web_page

    runs = watched["seconds"] / 60
    cpu_ms = sum(n / runs * 60 * ms(p) for p, n in per_minute.items()) + sum(ms(p) for p in once)
    api = sum(n / runs for p, n in per_minute.items() if " /api/" in p)
    return {
        "requests_per_hour": {**{p: round(n / runs * 60) for p, n in per_minute.items()}, **once},
        "php_cpu_s": round(cpu_ms / 1000, 1),
        "share_of_one_core": round(cpu_ms / 1000 / 3600, 5),
        "api_requests_per_min": round(api, 2),
        "share_of_throttle": round(api / THROTTLE_API, 3),
    }


def run(small: bool = False, minutes: float | None = None) -> dict[str, Any]:
    """`small`: half a minute watched, 5 s idle, 3 samples of each request (tests/test_bench_smoke.py)."""
    minutes = minutes if minutes is not None else (0.5 if small else 5.0)
    idle_s, samples = (5.0, 3) if small else (60.0, 20)
    with Procs("cost") as procs:
        server = Server(procs.dir / "2fauth")
        procs.callback(server.stop)
        wait_until(lambda: server.requests_since(0), 10, "the access log")
        cpu0 = server.cpu()
        time.sleep(idle_s)
        idle = (server.cpu() - cpu0) / idle_s
        watched = watch(procs, server, minutes, idle)
        if not small:  # the monitor's API requests leave the limiter's minute before the samples
            time.sleep(61)
        unit = per_request_cpu(server, samples)
    steady = hourly(watched, unit, minutes)
    return {
        "minutes": minutes,
        "idle_cpu_share": round(idle, 5),
        "watched": watched,
        "per_request": unit,
        "hourly": steady,
        "meets_goal": steady["share_of_one_core"] < CORE_GOAL
        and steady["share_of_throttle"] < THROTTLE_GOAL
        and watched["share_of_one_core"] < CORE_GOAL,
        "checks_made": sum(watched["requests"].values()),
    }
