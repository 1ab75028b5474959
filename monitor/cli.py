"""The commands; the one place that wires the parts together."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any

from monitor import config as configuration
from monitor import logs
from monitor.config import ConfigError, Settings
from monitor.models import Status
from monitor.sanitize import clean
from monitor.secrets import redact

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
    from monitor import simulator

    simulator.add_cli_arguments(p)

    p = sub.add_parser("demo", help="simulated 2FAuth instances, monitored, with the status page")
    p.add_argument("--listen", default="127.0.0.1:8080", help="status page address (default 127.0.0.1:8080)")
    p.add_argument("--db", default="data/demo.db", help="demo database (default data/demo.db)")
    _add_logging(p)

    for extend in EXTRA_COMMANDS:
        extend(sub)
    return parser


EXTRA_COMMANDS: list[
    Any
] = []  # other modules add subcommands: f(subparsers) -> None, with set_defaults(func=)


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
    from monitor.scheduler import run_all_once

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


def _bind(listen: str) -> socket.socket:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port)))
    except OSError as exc:
        sock.close()
        raise ConfigError([f"web.listen: cannot listen on {listen}: {exc.strerror or exc}"]) from None
    if family in (socket.AF_INET, socket.AF_INET6):
        # accepted connections inherit it: uvicorn writes a response's head and body separately, and
        # Nagle's algorithm then holds a small body back for the client's delayed ACK (about 40 ms)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def serve(settings: Settings, config_path: str | None, *, on_started: Any = None) -> int:
    """Run the scheduler and the web server in one event loop until SIGINT or SIGTERM."""
    import uvicorn

    from monitor.scheduler import Monitor
    from monitor.store import Store, StoreError
    from monitor.web import connections

    # visitors' connections must never take the descriptors the checks need
    open_files = connections.raise_open_file_limit()

    try:
        # a short busy timeout: the store is written from the event loop, which must not stall
        # for long behind another process's lock; the queue is retried every 2 s
        store = Store(settings.storage.path, busy_timeout=0.25)
    except StoreError as exc:
        raise ConfigError([f"storage.path: {exc}"]) from None
    monitor = Monitor(settings, store)
    for attach in ATTACH:
        attach(monitor)
    sock = _bind(settings.web.listen) if settings.web.enabled else None
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def reload() -> None:
        try:
            new = configuration.load_any(config_path)
        except ConfigError as exc:
            for line in exc.problems:
                log.error("reload refused: %s", line)
            log.error("reload refused: the running configuration is kept")
            return
        changes = monitor.apply(new)
        log.info("configuration reloaded: %s", "; ".join(changes) or "no change to checks")

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(NotImplementedError, AttributeError):
        loop.add_signal_handler(signal.SIGHUP, reload)

    await monitor.start()
    # --- push targets and heartbeat (issue 13; to move into runtime.py) ---
    from monitor.heartbeat import Heartbeat, readiness
    from monitor.push import Pusher

    pusher = Pusher(settings, monitor.latest)
    monitor.listeners.append(pusher.listener)
    await pusher.start()
    heartbeat = Heartbeat(settings.heartbeat, lambda: readiness(monitor)) if settings.heartbeat else None
    if heartbeat is not None:
        await heartbeat.start()
    # --- end push targets and heartbeat ---
    server = None
    server_task = None
    if sock is not None:
        from monitor.web import create_app

        server = _QuietServer(
            uvicorn.Config(
                create_app(monitor),
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=3,
                server_header=False,
                **connections.uvicorn_settings(open_files),
            )
        )
        server_task = asyncio.create_task(server.serve(sockets=[sock]))
        log.info("status page on http://%s/", settings.web.listen)
    if on_started is not None:
        on_started(monitor)
    waiters = [asyncio.create_task(stop.wait())] + ([server_task] if server_task else [])
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    log.info("stopping: finishing in-flight checks and writes")
    if server is not None:
        server.should_exit = True
    await monitor.stop(timeout=5.0)
    if server_task is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server_task, timeout=3)
    for hook in SHUTDOWN:
        with contextlib.suppress(Exception):
            await hook(monitor)
    # --- push targets and heartbeat (issue 13) ---
    await pusher.stop()
    if heartbeat is not None:
        await heartbeat.stop()
    # --- end push targets and heartbeat ---
    store.close()
    log.info("stopped")
    return EXIT_OK


ATTACH: list[Any] = []  # f(monitor) -> None: alerts, metrics and others hook in here
SHUTDOWN: list[Any] = []  # async f(monitor) -> None, after the scheduler stops


class _QuietServer:
    """uvicorn's Server without its own signal handling: `serve` owns SIGINT/SIGTERM/SIGHUP."""

    def __new__(cls, config: Any) -> Any:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self):
                yield

        return Server(config)


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    return asyncio.run(serve(settings, getattr(args, "config", None)))


def cmd_simulate(args: argparse.Namespace) -> int:
    from monitor import simulator

    return int(simulator.main_from_args(args))


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.demo import run_demo

    return run_demo(listen=args.listen, db=args.db)


COMMANDS = {
    "check": cmd_check,
    "run": cmd_run,
    "validate": cmd_validate,
    "simulate": cmd_simulate,
    "demo": cmd_demo,
}


# Parts that add commands or hook into `run` do it from their own module: each listed module, when
# present, has `register()` appending to EXTRA_COMMANDS, ATTACH and SHUTDOWN above.
EXIT_CLOSED_PIPE = 141  # what a shell reports for a filter stopped by SIGPIPE


def _closed_pipe() -> int:
    """The reader of our output went away (`check --json | head`): end quietly, like a Unix filter.
    What is still buffered goes to /dev/null, so the interpreter's own flush at exit cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_CLOSED_PIPE


EXTENSION_MODULES = ("monitor.web", "monitor.alerts")


def _load_extensions() -> None:
    import importlib

    for name in EXTENSION_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        register = getattr(module, "register", None)
        if register is not None and not getattr(module, "_registered", False):
            register()
            module._registered = True  # type: ignore[attr-defined]


def main(argv: Sequence[str] | None = None) -> int:
    _load_extensions()
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup(getattr(args, "log_format", None) or "text", getattr(args, "log_level", None) or "INFO")
    func = getattr(args, "func", None) or COMMANDS[args.command]
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
