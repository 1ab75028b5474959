"""Status page server time: a running monitor on a given database answers `/` and `/api/v1/status`
(and `/live`, the loopback floor) `n` times each, one request at a time over one kept-alive
connection; median and p95 of the round trip, an upper bound of the server time. Goal: p95 < 100 ms.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import BenchError, Procs, live_instances, percentile, wait_until

PATHS = ("/", "/api/v1/status", "/live")
P95_GOAL_MS = 100.0


def _status_ready(client: httpx.Client) -> bool:
    response = client.get("/api/v1/status")
    return response.status_code == 200 and bool(response.json())


def measure(procs: Procs, db: Path, names: list[str], sim_url: str, n: int) -> dict[str, Any]:
    """Start `2fauth-monitor run` on `db` with these instances (60 s interval), time the pages."""
    config = {"storage": {"path": str(db)}, "instances": live_instances(names, [sim_url], 60.0)}
    proc, url = procs.monitor(config, name="monitor-page")
    out: dict[str, Any] = {}
    with httpx.Client(base_url=url, timeout=30.0, trust_env=False) as client:
        wait_until(lambda: proc.check_alive() or _status_ready(client), 60, "GET /api/v1/status")
        for path in PATHS:
            for _ in range(3):  # warm: templates compiled, first queries cached
                client.get(path)
            times = []
            size = 0
            for _ in range(n):
                started = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise BenchError(f"GET {path} answered {response.status_code}")
                size = len(response.content)
            out[path] = {
                "median_ms": round(percentile(times, 50), 2),
                "p95_ms": round(percentile(times, 95), 2),
                "max_ms": round(max(times), 2),
                "bytes": size,
                "requests": n,
            }
        body = client.get("/api/v1/status").text
    proc.stop()
    missing = [name for name in names if f'"{name}"' not in body]
    if missing:
        raise BenchError(f"/api/v1/status does not list {len(missing)} instances, e.g. {missing[0]}")
    out["meets_goal"] = all(out[p]["p95_ms"] < P95_GOAL_MS for p in ("/", "/api/v1/status"))
    return out
