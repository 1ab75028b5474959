"""Cost of one check against a peer: blackbox_exporter and the monitor probe the same loopback
target (the simulator's `/up`) at the same steady rate; CPU per 1,000 checks for each, and the ratio.

The exporter's figure is its process CPU (utime + stime) over the probes a steady client asked of
it (`GET /probe?target=...&module=http_2xx`). The monitor's figure is the whole `2fauth-monitor run`
process (scheduling, HTTP, storage, listeners, idle web server) over the results it stored, with
`rate` instances checked every second. Both run one after the other, each alone with the simulator.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    HOST,
    BenchError,
    Procs,
    count_rows,
    cpu_seconds,
    free_port,
    http_ok,
    live_instances,
    wait_until,
)

EXPORTER = "prometheus-blackbox-exporter"
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


def measure_exporter(procs: Procs, targets: list[str], rate: float, seconds: float) -> dict[str, Any]:
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
    urls = [f"{base}/probe?module=http_2xx&target={t}" for t in targets]
    asyncio.run(_steady(urls, rate, min(1.0, seconds)))  # warm up
    cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
    sent, ok = asyncio.run(_steady(urls, rate, seconds))
    cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
    proc.stop()
    if ok < sent * 0.95:
        raise BenchError(f"blackbox_exporter: only {ok} of {sent} probes succeeded")
    return {
        "probes": sent,
        "succeeded": ok,
        "rate": round(sent / (t1 - t0), 1),
        "cpu_s": round(cpu1 - cpu0, 3),
        "ms_per_check": round((cpu1 - cpu0) / sent * 1000, 3),
    }


def measure_monitor(procs: Procs, sim_url: str, rate: float, seconds: float) -> dict[str, Any]:
    names = [f"i{n:04d}" for n in range(int(rate))]
    db = procs.dir / "peer.db"
    config = {"storage": {"path": str(db)}, "instances": live_instances(names, [sim_url], 1.0)}
    proc, _ = procs.monitor(config, name="monitor")
    wait_until(lambda: proc.check_alive() or count_rows(db) >= 3 * rate, 60, "the monitor's first runs")
    time.sleep(2.0)  # every instance scheduled and its connection open
    cpu0, rows0, t0 = cpu_seconds(proc.pid), count_rows(db), time.monotonic()
    deadline = t0 + seconds
    while time.monotonic() < deadline:
        time.sleep(min(1.0, deadline - time.monotonic()))
        proc.check_alive()
    cpu1, rows1, t1 = cpu_seconds(proc.pid), count_rows(db), time.monotonic()
    down = _down_rows(db)
    proc.stop()
    checks = rows1 - rows0
    if checks < rate * seconds * 0.8:
        raise BenchError(f"monitor made {checks} checks in {seconds}s, expected about {rate * seconds:.0f}")
    if down:
        raise BenchError(f"monitor: {down} checks were not up during the run (see {proc.log_path})")
    return {
        "checks": checks,
        "rate": round(checks / (t1 - t0), 1),
        "cpu_s": round(cpu1 - cpu0, 3),
        "ms_per_check": round((cpu1 - cpu0) / checks * 1000, 3),
    }


def _down_rows(db: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return int(conn.execute("select count(*) from results where status != 'up'").fetchone()[0])
    finally:
        conn.close()


def run(small: bool = False) -> dict[str, Any]:
    rate, seconds = (20.0, 3.0) if small else (100.0, 30.0)
    with Procs("peer") as procs:
        sim, sim_url = procs.simulator()
        targets = [f"{sim_url}/s/i{n:04d}/up" for n in range(int(rate))]
        exporter = measure_exporter(procs, targets, rate, seconds)
        monitor = measure_monitor(procs, sim_url, rate, seconds)
        sim.check_alive()
    ratio = monitor["ms_per_check"] / exporter["ms_per_check"]
    return {
        "rate_per_s": rate,
        "seconds": seconds,
        "exporter": exporter,
        "monitor": monitor,
        "exporter_cpu_s_per_1000": round(exporter["ms_per_check"], 3),
        "monitor_cpu_s_per_1000": round(monitor["ms_per_check"], 3),
        "ratio": round(ratio, 2),
        "checks_made": exporter["probes"] + monitor["checks"],
    }
