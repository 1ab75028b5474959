"""Cost of one check against a peer: blackbox_exporter and the monitor probe loopback targets (the
simulator's `/up`) at the same steady rate, **side by side**: both run at once, each against its own
simulator, and their CPU is read over the same window, so the machine's noise falls on both. CPU per
1,000 checks for each, and the ratio, in several rounds (their median and spread).

The exporter's figure is its process CPU (utime + stime) over the probes a steady client asked of
it (`GET /probe?target=...&module=http_2xx`). The monitor's figure is the whole `2fauth-monitor run`
process (scheduling, HTTP, storage, alerting, metrics, idle web server) over the results it stored,
with `rate` instances checked every second.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    HOST,
    BenchError,
    Proc,
    Procs,
    count_rows,
    cpu_seconds,
    free_port,
    http_ok,
    live_instances,
    wait_until,
)

EXPORTER = "prometheus-blackbox-exporter"
RATIO_GOAL = 0.7  # issue 12: the monitor's CPU per check at most 0.7 of the exporter's, every round
EXPORTER_CONFIG = """\
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
"""


async def _steady(urls: list[str], rate: float, seconds: float) -> tuple[int, int]:
    """GET each URL in turn at `rate` per second for `seconds`; (requests sent, probe_success 1)."""
    total = int(rate * seconds)
    ok = 0
    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as client:

        async def one(url: str) -> None:
            nonlocal ok
            response = await client.get(url)
            if response.status_code == 200 and "\nprobe_success 1" in response.text:
                ok += 1

        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05
        tasks = []
        for i in range(total):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(urls[i % len(urls)])))
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=seconds + 30)
    return total, ok


def start_exporter(procs: Procs) -> tuple[Proc, str]:
    binary = shutil.which(EXPORTER)
    if binary is None:
        raise BenchError(f"{EXPORTER} is not installed (./dev bench installs the Debian package)")
    config = procs.dir / "blackbox.yml"
    config.write_text(EXPORTER_CONFIG)
    port = free_port()
    proc = procs.start(
        "exporter",
        [binary, f"--config.file={config}", f"--web.listen-address={HOST}:{port}", "--log.level=warn"],
    )
    base = f"http://{HOST}:{port}"
    wait_until(lambda: proc.check_alive() or http_ok(base + "/metrics"), 20, "blackbox_exporter")
    return proc, base


def start_monitor(procs: Procs, sim_url: str, rate: float) -> tuple[Proc, Path]:
    names = [f"i{n:04d}" for n in range(int(rate))]
    db = procs.dir / "peer.db"
    config = {"storage": {"path": str(db)}, "instances": live_instances(names, [sim_url], 1.0)}
    proc, _ = procs.monitor(config, name="monitor")
    wait_until(lambda: proc.check_alive() or count_rows(db) >= 3 * rate, 60, "the monitor's first runs")
    return proc, db


def one_round(
    exporter: Proc, probe_urls: list[str], monitor: Proc, db: Path, rate: float, seconds: float
) -> dict[str, Any]:
    """One window: the steady client drives the exporter while the monitor runs on its own schedule."""
    cpu = {"exporter": cpu_seconds(exporter.pid), "monitor": cpu_seconds(monitor.pid)}
    rows0, t0 = count_rows(db), time.monotonic()
    sent, ok = asyncio.run(_steady(probe_urls, rate, seconds))
    t1 = time.monotonic()
    spent = {"exporter": cpu_seconds(exporter.pid) - cpu["exporter"]}
    spent["monitor"] = cpu_seconds(monitor.pid) - cpu["monitor"]
    checks = count_rows(db) - rows0
    exporter.check_alive() or monitor.check_alive()
    if ok < sent * 0.95:
        raise BenchError(f"blackbox_exporter: only {ok} of {sent} probes succeeded")
    if checks < rate * seconds * 0.8:
        raise BenchError(f"monitor made {checks} checks in {seconds}s, expected about {rate * seconds:.0f}")
    exporter_ms = spent["exporter"] / sent * 1000
    monitor_ms = spent["monitor"] / checks * 1000
    return {
        "exporter": {"probes": sent, "succeeded": ok, "cpu_s": round(spent["exporter"], 3)},
        "monitor": {"checks": checks, "cpu_s": round(spent["monitor"], 3)},
        "window_s": round(t1 - t0, 1),
        "exporter_ms_per_check": round(exporter_ms, 3),
        "monitor_ms_per_check": round(monitor_ms, 3),
        "ratio": round(monitor_ms / exporter_ms, 3),
    }


def _down_rows(db: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return int(conn.execute("select count(*) from results where status != 'up'").fetchone()[0])
    finally:
        conn.close()


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": min(values), "max": max(values)}


def run(small: bool = False, rounds: int | None = None) -> dict[str, Any]:
    rate, seconds = (20.0, 3.0) if small else (100.0, 30.0)
    rounds = rounds or (1 if small else 3)
    with Procs("peer") as procs:
        sim_exporter, exporter_sim_url = procs.simulator("simulator-exporter")
        sim_monitor, monitor_sim_url = procs.simulator("simulator-monitor")
        exporter, base = start_exporter(procs)
        probe_urls = [
            f"{base}/probe?module=http_2xx&target={exporter_sim_url}/s/i{n:04d}/up" for n in range(int(rate))
        ]
        monitor, db = start_monitor(procs, monitor_sim_url, rate)
        asyncio.run(_steady(probe_urls, rate, min(2.0, seconds)))  # warm up, the monitor meanwhile too
        measured = [one_round(exporter, probe_urls, monitor, db, rate, seconds) for _ in range(rounds)]
        down = _down_rows(db)
        monitor.stop()
        exporter.stop()
        sim_exporter.check_alive() or sim_monitor.check_alive()
    if down:
        raise BenchError(f"monitor: {down} checks were not up during the run (see {monitor.log_path})")
    ratios = [r["ratio"] for r in measured]
    return {
        "rate_per_s": rate,
        "seconds": seconds,
        "rounds": measured,
        "exporter_ms_per_check": _spread([r["exporter_ms_per_check"] for r in measured]),
        "monitor_ms_per_check": _spread([r["monitor_ms_per_check"] for r in measured]),
        "ratio": _spread(ratios),
        "ratio_goal": RATIO_GOAL,
        "every_round_meets_goal": all(r <= RATIO_GOAL for r in ratios),
        "checks_made": sum(r["exporter"]["probes"] + r["monitor"]["checks"] for r in measured),
    }
