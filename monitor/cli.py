"""The commands: every one is listed here, parsed with argparse and mapped to its function.

`run` and `demo` start the parts through monitor/runtime.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence

from monitor import config as configuration
from monitor import demo, logs, runtime, simulator
from monitor.alerts.command import cmd_test_alert
from monitor.config import ConfigError, Settings
from monitor.models import Status
from monitor.sanitize import clean
from monitor.scheduler import run_all_once
from monitor.secrets import redact
from monitor.web.static_render import cmd_render

log = logging.getLogger("monitor")

EXIT_OK, EXIT_FAILING, EXIT_CONFIG = 0, 1, 2


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help="YAML configuration (default: $MONITOR_CONFIG, "
        "else configuration from environment variables alone)",
    )


def _add_logging(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-format", choices=("text", "json"), default=None, help="log line format (default text)"
    )
    p.add_argument("--log-level", default=None, help="debug, info, warning or error (default info)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="2fauth-monitor", description="Synthetic end-to-end monitor for 2FAuth."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "check", help="run every check once; exit 0 when all are up, 1 otherwise, 2 on bad config"
    )
    _add_config(p)
    p.add_argument("--json", action="store_true", help="print one JSON document with every result")
    _add_logging(p)

    p = sub.add_parser("run", help="the scheduler, history and status page")
    _add_config(p)
    _add_logging(p)

    p = sub.add_parser("validate", help="check a configuration and print warnings")
    _add_config(p)

    p = sub.add_parser("simulate", help="a simulated 2FAuth, to rehearse outages")
    simulator.add_cli_arguments(p)

    p = sub.add_parser("demo", help="simulated 2FAuth instances, monitored, with the status page")
    p.add_argument("--listen", default="127.0.0.1:8080", help="status page address (default 127.0.0.1:8080)")
    p.add_argument("--db", default="data/demo.db", help="demo database (default data/demo.db)")
    _add_logging(p)

    p = sub.add_parser("render", help="write the status page as static files, for any web server")
    p.add_argument("--config", "-c", metavar="FILE", help="YAML configuration (default: $MONITOR_CONFIG)")
    p.add_argument("--out", "-o", metavar="DIR", required=True, help="folder to write into")

    p = sub.add_parser(
        "test-alert",
        help="send a test alert through each notifier (or one); exit 0 when delivered, 1 if not, 2 on bad config",
    )
    _add_config(p)
    p.add_argument("--notifier", "-n", metavar="NAME", help="only this notifier (default: every one)")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return configuration.load_any(getattr(args, "config", None))


def cmd_validate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    for line in configuration.warnings(settings):
        print(f"warning: {redact(line)}")
    checks = sum(len(i.enabled_checks()) for i in settings.instances)
    print(f"configuration is valid: {len(settings.instances)} instances, {checks} checks")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    settings = _settings(args)
    results = asyncio.run(run_all_once(settings))
    if args.json:
        print(redact(json.dumps({"results": [r.to_dict() for r in results]}, indent=2, ensure_ascii=False)))
    else:
        for r in results:
            latency = f"{r.latency_ms:.0f}ms" if r.latency_ms is not None else "-"
            kind = f" [{r.kind}]" if r.kind else ""
            line = f"{r.instance}/{r.check}: {r.status}{kind} {latency} {r.path or ''} {r.message}".rstrip()
            print(clean(redact(line)))
    return EXIT_OK if all(r.status == Status.UP for r in results) else EXIT_FAILING


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    return runtime.run(runtime.serve(settings, getattr(args, "config", None)))


def cmd_simulate(args: argparse.Namespace) -> int:
    return int(simulator.main_from_args(args))


def cmd_demo(args: argparse.Namespace) -> int:
    with demo.simulated(listen=args.listen, db=args.db) as settings:
        return runtime.run(runtime.serve(settings, None))


COMMANDS = {
    "check": cmd_check,
    "run": cmd_run,
    "validate": cmd_validate,
    "simulate": cmd_simulate,
    "demo": cmd_demo,
    "render": cmd_render,
    "test-alert": cmd_test_alert,
}


EXIT_CLOSED_PIPE = 141  # what a shell reports for a filter stopped by SIGPIPE


def _closed_pipe() -> int:
    """The reader of our output went away (`check --json | head`): end quietly, like a Unix filter.
    What is still buffered goes to /dev/null, so the interpreter's own flush at exit cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_CLOSED_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup(getattr(args, "log_format", None) or "text", getattr(args, "log_level", None) or "INFO")
    func = COMMANDS[args.command]
    try:
        code = int(func(args) or 0)
        sys.stdout.flush()  # inside the try: a reader that left shows here, not at exit
        return code
    except BrokenPipeError:
        return _closed_pipe()
    except ConfigError as exc:
        for line in exc.problems:
            print(f"error: {redact(line)}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
