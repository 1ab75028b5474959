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
from typing import Any, cast

from monitor import __version__, demo, init, logs, runtime, simulator
from monitor import config as configuration
from monitor.alerts.command import cmd_test_alert
from monitor.config import ConfigError, Settings
from monitor.models import Status
from monitor.plural import plural
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


# name -> (one line for the command list, what it does, exit codes, examples)
HELP: dict[str, tuple[str, str, str, str]] = {
    "init": (
        "write a working configuration for one 2FAuth instance, checked against it",
        "Checks the URL (finds /up or /live, reads the release) and the token (GET /api/v1/user),\n"
        "optionally creates the canary TOTP account in 2FAuth, then writes a minimal configuration\n"
        "whose secrets sit in separate files (mode 0600), and runs every check once.\n"
        "Asks for what is missing when run in a terminal.",
        "0  the configuration is written and every check is up\n"
        "1  2FAuth failed (unreachable, maintenance, API error), or a check is not up\n"
        "2  a mistake in the input: a bad URL, a refused token, a file that exists (see --force)",
        "2fauth-monitor init --url https://2fauth.example.com --token-file twofauth_token \\\n"
        "    --create-canary --out monitor.yaml\n"
        "2fauth-monitor init          # in a terminal: asks for the URL and the token",
    ),
    "check": (
        "run every check once and print the results",
        "Runs every enabled check of every instance once, without the scheduler, history or page.",
        "0    every check is up\n"
        "1    a check is down or degraded\n"
        "2    configuration error (one line per problem, naming its key path)\n"
        "141  the reader of the output went away (check --json | head)",
        "2fauth-monitor check --config monitor.yaml\n2fauth-monitor check --config monitor.yaml --json",
    ),
    "run": (
        "the scheduler, the history and the status page",
        "Runs the checks on their schedule, keeps the history in SQLite, sends alerts and serves the\n"
        "status page (web.listen, default 127.0.0.1:8080). SIGHUP reloads the configuration;\n"
        "SIGINT or SIGTERM stop after the writes in flight.",
        "0  stopped by SIGINT or SIGTERM\n"
        "2  configuration error, the database unusable, or the page's address taken",
        "2fauth-monitor run --config monitor.yaml\nMONITOR_CONFIG=monitor.yaml 2fauth-monitor run --log-format json",
    ),
    "validate": (
        "check a configuration and print warnings",
        "Reads and validates a configuration (its secret files too) without contacting any instance,\n"
        "and warns about risky settings: the API budget, insecure TLS, a token over plain http://.",
        "0  valid (warnings may be printed)\n2  invalid: one line per problem, naming its key path",
        "2fauth-monitor validate --config monitor.yaml",
    ),
    "simulate": (
        "a simulated 2FAuth, to rehearse outages",
        "Serves a simulated 2FAuth (the API of 8.0.1, or of the real 5.4.3) on loopback, with faults\n"
        "at start (--fault) or at run time (POST /__sim/faults).",
        "0  stopped by Ctrl-C or SIGTERM\n1  the port cannot be bound\n2  a bad option",
        "2fauth-monitor simulate --port 8000 --release 5.4.3 --fault slow",
    ),
    "demo": (
        "simulated 2FAuth instances, monitored, with the status page",
        "Starts two simulated 2FAuth instances (one goes through a fault every 45 seconds), monitors\n"
        "them and serves the status page, with 90 days of generated history.",
        "0  stopped by Ctrl-C or SIGTERM\n2  the page's address is taken, or the database unusable",
        "2fauth-monitor demo            # then open http://127.0.0.1:8080/",
    ),
    "render": (
        "write the status page as static files, for any web server",
        "Writes the status page, every window, instance page, JSON, feed and badge as files, from the\n"
        "history a running (or stopped) monitor keeps.",
        "0  written\n2  configuration error, or no database yet",
        "2fauth-monitor render --config monitor.yaml --out site/",
    ),
    "test-alert": (
        "send a test alert through each notifier (or one)",
        "Sends a test alert through the real delivery path of each notifier, or of one, and says\n"
        "whether it arrived.",
        "0  delivered\n1  not delivered (the reason is printed)\n2  configuration error",
        "2fauth-monitor test-alert --config monitor.yaml --notifier ops",
    ),
}


def _command(sub: Any, name: str) -> argparse.ArgumentParser:
    summary, description, exit_codes, examples = HELP[name]
    indent = "\n  ".join
    return cast(
        argparse.ArgumentParser,
        sub.add_parser(
            name,
            help=summary,
            description=description,
            epilog=f"exit codes:\n  {indent(exit_codes.splitlines())}\n\nexamples:\n  "
            f"{indent(examples.splitlines())}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        ),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="2fauth-monitor",
        description="Synthetic end-to-end monitor for 2FAuth.",
        epilog="Start with `2fauth-monitor init`, then `2fauth-monitor run --config monitor.yaml`.\n"
        "Each command has its own --help.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"2fauth-monitor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init.add_arguments(_command(sub, "init"))

    p = _command(sub, "check")
    _add_config(p)
    p.add_argument("--json", action="store_true", help="print one JSON document with every result")
    _add_logging(p)

    p = _command(sub, "run")
    _add_config(p)
    _add_logging(p)

    _add_config(_command(sub, "validate"))

    simulator.add_cli_arguments(_command(sub, "simulate"))

    p = _command(sub, "demo")
    p.add_argument("--listen", default="127.0.0.1:8080", help="status page address (default 127.0.0.1:8080)")
    p.add_argument("--db", default="data/demo.db", help="demo database (default data/demo.db)")
    _add_logging(p)

    p = _command(sub, "render")
    p.add_argument("--config", "-c", metavar="FILE", help="YAML configuration (default: $MONITOR_CONFIG)")
    p.add_argument("--out", "-o", metavar="DIR", required=True, help="folder to write into")

    p = _command(sub, "test-alert")
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
    print(f"configuration is valid: {plural(len(settings.instances), 'instance')}, {plural(checks, 'check')}")
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
    "init": init.cmd_init,
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
