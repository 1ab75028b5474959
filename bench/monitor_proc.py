"""`2fauth-monitor run CONFIG`, plus a hook that lets a benchmark read the monitor's own figures.

Usage: BENCH_STATS=FILE python bench/monitor_proc.py CONFIG. The process runs what the `run` command
runs (monitor/runtime.py: scheduler, checks, store, listeners, web server); the hook only keeps every lag sample and, on
SIGUSR1, appends one JSON line to FILE and starts a new window:

    lags          scheduler lag of each run submitted (Monitor.stats.lags: submission - due time)
    start_lags    due time -> the check really started (includes waiting for the concurrency cap)
    writes_total, write_seconds_total, runs, pending    cumulative store and scheduler counters
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import deque
from typing import Any

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent

from monitor import config, logs, runtime


def attach(monitor: Any) -> None:
    out = os.environ["BENCH_STATS"]
    stats = monitor.stats
    stats.lags = deque(maxlen=1_000_000)
    start_lags: deque[float] = deque(maxlen=1_000_000)
    due: dict[str, float] = {}

    def on_submitted(event: JobSubmissionEvent) -> None:
        if not event.job_id.startswith("_") and event.scheduled_run_times:
            due[event.job_id] = event.scheduled_run_times[-1].timestamp()

    def on_result(result: Any, transition: Any, maintenance: bool) -> None:
        when = due.pop(f"{result.instance}:{result.check}", None)
        if when is not None:
            start_lags.append(max(0.0, result.started_at - when))

    def snapshot() -> None:
        writer = monitor.store.writer
        line = {
            "time": time.time(),
            "lags": list(stats.lags),
            "start_lags": list(start_lags),
            "writes_total": writer.writes_total,
            "write_seconds_total": writer.write_seconds_total,
            "runs": sum(stats.runs.values()),
            "pending": len(writer.pending),
        }
        stats.lags.clear()
        start_lags.clear()
        with open(out, "a") as f:
            f.write(json.dumps(line) + "\n")

    monitor.scheduler.add_listener(on_submitted, EVENT_JOB_SUBMITTED)
    monitor.listeners.append(on_result)
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, snapshot)


if __name__ == "__main__":
    logs.setup("text", "WARNING")
    path = sys.argv[1]
    sys.exit(runtime.run(runtime.serve(config.load_any(path), path, on_started=attach)))
