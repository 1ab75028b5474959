"""A broken notifier is visible: pending and given-up deliveries on the instance's detail page."""

from __future__ import annotations

import httpx

from .conftest import free_port, instance_config, wait_for


def test_pending_and_failed_deliveries_show_on_the_detail_page(sim, write_config, start_monitor):
    dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens: every attempt is refused
    config = {
        "instances": [instance_config(sim.url, interval="1s", timeout="1s")],
        "notifiers": [
            {"name": "ops", "type": "webhook", "url": dead, "secret": "hook-signing-secret"},
            {"name": "gone", "type": "webhook", "url": "http://127.0.0.1:9/x", "timeout": "1s"},
        ],
        "alerts": {
            "failure_threshold": 1,
            "notify": ["ops", "gone"],
            "delivery": {"backoff_initial": "1s", "backoff_max": "2s", "max_attempts": 2},
        },
    }
    mon = start_monitor(write_config(config))
    sim.set_faults(["wrong_codes"])

    def page() -> str:
        return httpx.get(mon.url + "/instances/home", timeout=5).text

    text = wait_for(lambda: "Given up" in (t := page()) and t, timeout=30, message="a delivery given up on")
    assert "Alert deliveries" in text
    assert "ops" in text and "gone" in text
    assert dead not in text and "hook-signing-secret" not in text
    assert "No alert waiting to be delivered" not in text
