"""Status page server time: a running monitor on a given database answers `/` and `/api/v1/status`
(and `/live`, the loopback floor) `n` times each, one request at a time over one kept-alive
connection; median and p95 of the round trip, an upper bound of the server time. Goal: p95 < 100 ms.
Pages are built off the event loop and served for 5 s, so most requests are served from memory;
the misses (one per window after the cache expired) and the mean build time are reported too.
"""

from __future__ import annotations

import re
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
        # a built page is served for a few seconds; a miss builds it in a worker thread:
        # time the misses too, by asking for each window once after the cache has expired
        time.sleep(5.5)
        misses = []
        for window in ("24h", "7d", "30d", "90d", "365d"):
            started = time.perf_counter()
            client.get("/", params={"window": window})
            misses.append((time.perf_counter() - started) * 1000)
        out["uncached_/"] = {
            "median_ms": round(percentile(misses, 50), 2),
            "max_ms": round(max(misses), 2),
            "requests": len(misses),
        }
        scrape = client.get("/metrics").text
        count = float(
            re.search(r"^twofauth_monitor_page_build_seconds_count ([\d.e+]+)$", scrape, re.M).group(1)
        )
        total = float(
            re.search(r"^twofauth_monitor_page_build_seconds_sum ([\d.e+-]+)$", scrape, re.M).group(1)
        )
        out["page_builds"] = {"count": int(count), "mean_ms": round(total / max(count, 1) * 1000, 1)}
        body = client.get("/api/v1/status").text
    proc.stop()
    missing = [name for name in names if f'"{name}"' not in body]
    if missing:
        raise BenchError(f"/api/v1/status does not list {len(missing)} instances, e.g. {missing[0]}")
    out["meets_goal"] = all(out[p]["p95_ms"] < P95_GOAL_MS for p in ("/", "/api/v1/status"))
    return out
