"""`2fauth-monitor test-alert`: a test message through the real notifier path; says if it arrived."""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from monitor import config as configuration
from monitor.config import ConfigError
from monitor.notifiers import NotifierError, NotifierSettings, build, make_test_alert
from monitor.sanitize import clean
from monitor.secrets import redact

EXIT_DELIVERED, EXIT_NOT_DELIVERED = 0, 1


async def send_tests(chosen: list[NotifierSettings]) -> list[tuple[str, bool, str]]:
    """(name, delivered, what happened) for each notifier, sent one after the other."""
    out = []
    for cfg in chosen:
        started = time.perf_counter()
        notifier = None
        try:
            notifier = build(cfg)
            sent = await notifier.send(make_test_alert(), f"test-{uuid.uuid4()}")
        except NotifierError as exc:
            hint = " (a retry cannot help: check the URL, token or template)" if exc.permanent else ""
            out.append((cfg.name, False, redact(exc.message) + hint))
        else:
            took = (time.perf_counter() - started) * 1000
            out.append((cfg.name, True, f"{sent.detail}, {took:.0f} ms"))
        finally:
            if notifier is not None:
                await notifier.aclose()
    return out


def cmd_test_alert(args: argparse.Namespace) -> int:
    settings = configuration.load_any(getattr(args, "config", None))
    if not settings.notifiers:
        raise ConfigError(["notifiers: none configured, so there is nothing to test (see docs/alerting.md)"])
    chosen = [n for n in settings.notifiers if args.notifier in (None, n.name)]
    if not chosen:
        names = ", ".join(n.name for n in settings.notifiers)
        raise ConfigError([f"--notifier: no notifier named '{args.notifier}' (configured: {names})"])
    results = asyncio.run(send_tests(chosen))
    for name, delivered, detail in results:
        print(clean(f"{name}: delivered ({detail})" if delivered else f"{name}: not delivered: {detail}"))
    return EXIT_DELIVERED if all(ok for _, ok, _ in results) else EXIT_NOT_DELIVERED
