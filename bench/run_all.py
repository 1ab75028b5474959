"""Run every benchmark and print its figures: `python bench/run_all.py [--small] [--json FILE]`.

    peer     CPU per 1,000 checks, the monitor beside blackbox_exporter at the same steady rate (3 rounds)
    scale    10,000 checks at 60 s: scheduling lag, CPU share, peak RSS, SQLite write time
    history  400 days for 100 checks through the store: size, prune and write time, page time
    cost     the monitor at its defaults against the real 2FAuth: requests a minute, PHP CPU
             (only with --only cost: it needs ../shared/real-2fauth)

`--small` (CI, and tests/test_bench_smoke.py) runs each at a small size in seconds. The exit code
is 1 only when a benchmark breaks (an error, or it made no checks), never because of its timings.
Every benchmark talks to 127.0.0.1 only and stops every process it started.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cost, history, peer, scale
from bench.common import machine

BENCHMARKS = {"peer": peer.run, "scale": scale.run, "history": history.run, "cost": cost.run}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="small sizes, a few seconds each (CI)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to this JSON file")
    parser.add_argument("--only", choices=list(BENCHMARKS), action="append", help="run only these")
    parser.add_argument("--scale-sizes", default="10000", help="checks for the scale benchmark (comma list)")
    parser.add_argument("--peer-rounds", type=int, help="side-by-side rounds of the peer benchmark (3)")
    parser.add_argument("--full-history", action="store_true", help="every day at 60 s (about 20 min)")
    parser.add_argument("--history-mix", action="store_true", help="history: live, ready, totp in turn")
    parser.add_argument("--cost-minutes", type=float, help="how long cost watches (default 5, --small 1)")
    args = parser.parse_args(argv)

    report: dict[str, Any] = {"machine": machine(), "small": args.small, "benchmarks": {}}
    print(f"machine: {json.dumps(report['machine'])}", flush=True)
    broken = []
    for name in args.only or [n for n in BENCHMARKS if n != "cost"]:
        started = time.monotonic()
        try:
            kwargs: dict[str, Any] = {"small": args.small}
            if name == "scale" and not args.small:
                kwargs["sizes"] = tuple(int(s) for s in args.scale_sizes.split(","))
            if name == "peer" and args.peer_rounds:
                kwargs["rounds"] = args.peer_rounds
            if name == "cost":
                kwargs["minutes"] = args.cost_minutes
            if name == "history":
                kwargs["full_history"] = args.full_history
                kwargs["mix"] = args.history_mix
            figures = BENCHMARKS[name](**kwargs)
        except Exception as exc:
            traceback.print_exc()
            print(f"{name}: BROKEN: {exc}", flush=True)
            broken.append(name)
            report["benchmarks"][name] = {"error": str(exc)}
            continue
        figures["wall_seconds"] = round(time.monotonic() - started, 1)
        if not figures.get("checks_made"):
            print(f"{name}: BROKEN: it made no checks", flush=True)
            broken.append(name)
        report["benchmarks"][name] = figures
        print(f"{name}: {json.dumps(figures, indent=2)}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if broken:
        print(f"broken: {', '.join(broken)}", file=sys.stderr)
        return 1
    print("all benchmarks ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
