"""`2fauth-monitor simulate`: the arguments, and running the simulator until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys

from .faults import FAULTS, FLAVOURS, RELEASES
from .server import run
from .tokens import DEFAULT_TOKEN


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `simulate` options to a (sub)parser."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument(
        "--flavour", choices=FLAVOURS, default="upstream", help="upstream 2FAuth v8, or with /live and /ready"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        choices=list(FAULTS),
        metavar="NAME",
        help=f"start with this fault on the default instance (repeatable): {', '.join(FAULTS)}",
    )
    parser.add_argument(
        "--skew", type=float, default=120.0, help="clock_skew offset in seconds (default 120)"
    )
    parser.add_argument("--delay", type=float, default=3.0, help="slow delay in seconds (default 3)")
    parser.add_argument(
        "--throttle", type=int, default=60, help="API requests per minute per client IP; 0 = off"
    )
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="T",
        help="accept this bearer token (repeatable; replaces the default)",
    )
    parser.add_argument(
        "--release",
        choices=RELEASES,
        default="8.0.1",
        help="the 2FAuth release whose API to answer with: 8.0.1 (default) or 5.4.3 (as the real v5.4.3 does)",
    )
    parser.add_argument(
        "--encryption",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="2FAuth's 'Protect sensitive data': with it (default) the app_key fault breaks stored secrets",
    )
    parser.add_argument(
        "--app-version", default=None, help="the version the web page shows (default: the release)"
    )


def main_from_args(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM; 0 then, 1 when the port cannot be bound."""
    tokens = args.token or [DEFAULT_TOKEN]
    state = " (refusing connections: fault down)" if "down" in args.fault else ""
    faults = f", faults: {', '.join(args.fault)}" if args.fault else ""

    def announce(url: str) -> None:
        line = f"2FAuth {args.app_version or args.release} simulator ({args.flavour}{faults}) on {url}{state}; bearer token: {tokens[0]}"
        print(line, flush=True)

    # uvicorn re-raises the signal it caught once it has shut down: make SIGTERM end like Ctrl-C.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        run(
            args.host,
            args.port,
            flavour=args.flavour,
            faults=args.fault,
            tokens=tokens,
            throttle=args.throttle,
            release=args.release,
            version=args.app_version,
            encryption=args.encryption,
            skew=args.skew,
            delay=args.delay,
            on_listening=announce,
        )
    except KeyboardInterrupt:
        pass
    except OSError as error:
        print(f"cannot listen on {args.host} port {args.port}: {error.strerror or error}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
