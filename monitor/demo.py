"""`2fauth-monitor demo`: simulated 2FAuth instances on loopback, monitored, with the status page.

One instance is healthy (the design's /live and /ready), one is upstream 2FAuth v8 that goes
through a cycle of faults, so a newcomer sees every part of the product without a 2FAuth.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

from monitor import config, simulator
from monitor.demo_history import seed_history
from monitor.store import Store

log = logging.getLogger("monitor.demo")

FAULT_CYCLE: list[tuple[list[str], dict[str, Any]]] = [
    ([], {}),
    (["slow"], {"delay": 1.5}),
    ([], {}),
    (["clock_skew"], {"skew": 90}),
    ([], {}),
    (["db_down"], {}),
    ([], {}),
    (["wrong_codes"], {}),
    ([], {}),
    (["maintenance"], {}),
]
CYCLE_SECONDS = 45.0
# the banner above the status, so nobody mistakes the generated history for a real one
DEMO_NOTICE = "Demo: the instances are simulated, and the history before this run is generated."


def demo_settings(healthy_url: str, flaky_url: str, listen: str, db: str) -> config.Settings:
    def instance(name: str, display: str, url: str) -> dict[str, Any]:
        return {
            "name": name,
            "display_name": display,
            "url": url,
            "show_url": True,
            "token": simulator.DEFAULT_TOKEN,
            "interval": "10s",
            "timeout": "5s",
            "checks": {
                "totp": {
                    "canary_secret": simulator.DEFAULT_CANARY_SECRET,
                    "account_id": simulator.CANARY_ACCOUNT_ID,
                }
            },
        }

    raw = {
        "storage": {"path": db},
        "web": {
            "listen": listen,
            "title": "2FAuth status (demo)",
            "description": "Simulated 2FAuth instances on this machine. History before the demo started "
            "is simulated; the flaky instance cycles through real faults every 45 s.",
            "refresh": "10s",
            "notice": DEMO_NOTICE,
        },
        "instances": [
            instance("family", "Family vault", healthy_url),
            instance("flaky", "Lab (cycles through faults)", flaky_url),
        ],
    }
    return config.from_mapping(raw, env={})


def _cycle_faults(handle: Any, stop: threading.Event) -> None:
    i = 0
    while not stop.wait(CYCLE_SECONDS):
        i = (i + 1) % len(FAULT_CYCLE)
        faults, params = FAULT_CYCLE[i]
        handle.set_faults(faults, **params)
        log.info("demo: the flaky instance now has %s", ", ".join(faults) or "no fault")


def _seed(settings: config.Settings) -> None:
    """Write 90 days of simulated past results through the real store, once."""
    store = Store(settings.storage.path)
    try:
        if not store.recent_results(settings.instances[0].name, limit=1):
            seed_history(store, settings, days=90)
            store.flush()
    finally:
        store.close()


@contextlib.contextmanager
def simulated(listen: str = "127.0.0.1:8080", db: str = "data/demo.db") -> Iterator[config.Settings]:
    """The demo's settings, while its simulated instances run (and the faults cycle); the caller
    runs the monitor on them (`2fauth-monitor demo` does it through monitor/runtime.py)."""
    healthy = simulator.start_in_thread(flavour="probes")
    flaky = simulator.start_in_thread(flavour="upstream")
    stop = threading.Event()
    cycler = threading.Thread(target=_cycle_faults, args=(flaky, stop), daemon=True, name="demo-faults")
    try:
        settings = demo_settings(healthy.url, flaky.url, listen, db)
        _seed(settings)
        cycler.start()
        print(f"demo: simulated 2FAuth at {healthy.url} (healthy) and {flaky.url} (cycles through faults)")
        print(f"demo: status page on http://{listen}/  (Ctrl-C to stop)", flush=True)
        yield settings
    finally:
        stop.set()
        flaky.stop()
        healthy.stop()
