"""Two monitors in two locations under one real Prometheus (Debian's `prometheus`) with the shipped
rules, and a real Alertmanager routing to a loopback webhook.

Each monitor reaches the same 2FAuth instance `home` through its own path (its own simulated
sub-directory instance), so one location's path can fail alone. The rule "down from at least 2
locations" must stay quiet while only one path fails, and fire, through Alertmanager to the
webhook, once both locations see the outage.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from monitor import simulator
from tests.conftest import free_port, instance_config, wait_for
from tests.prom import RULES, committed, concrete, queries
from tests.receiver import Receiver

pytestmark = pytest.mark.slow
SEVERAL = "TwoFAuthDownFromSeveralLocations"


class Daemon:
    """A Prometheus or Alertmanager process on loopback, its output in a file."""

    def __init__(self, args: list[str], port: int, log: Path, ready_path: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT)
        wait_for(lambda: self._ready(ready_path), timeout=30, message=f"{args[0]} ready")

    def _ready(self, path: str) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.proc.args[0]} exited:\n{self.log.read_text(errors='replace')}")
        try:
            return httpx.get(self.url + path, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, (
        f"{name} is missing: ./dev setup --test installs it (apt-get install prometheus prometheus-alertmanager)"
    )
    return path


def fast_rules(target: Path) -> Path:
    """The shipped rules with every `for` at 1s and evaluation every second: same expressions."""
    data = yaml.safe_load(RULES.read_text())
    for group in data["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            rule["for"] = "1s"
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


@pytest.fixture
def stack(tmp_path: Path, start_monitor) -> Iterator[dict[str, Any]]:
    sim = simulator.start_in_thread()
    receiver = Receiver()
    daemons: list[Daemon] = []
    try:
        monitors = {}
        for location, env in (("home", {}), ("vps", {"MONITOR_LOCATION": "vps"})):
            raw: dict[str, Any] = {
                "instances": [
                    instance_config(
                        sim.url_for(f"path-{location}"), "home", token=False, interval="2s", timeout="2s"
                    )
                ],
                "storage": {"path": str(tmp_path / f"{location}.db")},
            }
            if not env:
                raw["location"] = location  # one from the file, the other from MONITOR_LOCATION
            config = tmp_path / f"{location}.yaml"
            config.write_text(yaml.safe_dump(raw))
            monitors[location] = start_monitor(config, env=env)

        am_port = free_port()
        (tmp_path / "alertmanager.yml").write_text(
            yaml.safe_dump(
                {
                    "route": {
                        "receiver": "hook",
                        "group_by": ["alertname", "instance"],
                        "group_wait": "1s",
                        "group_interval": "1s",
                        "repeat_interval": "1h",
                    },
                    "receivers": [
                        {"name": "hook", "webhook_configs": [{"url": receiver.url + "/alertmanager"}]}
                    ],
                }
            )
        )
        daemons.append(
            Daemon(
                [
                    _tool("prometheus-alertmanager"),
                    f"--config.file={tmp_path / 'alertmanager.yml'}",
                    f"--storage.path={tmp_path / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",
                ],
                am_port,
                tmp_path / "alertmanager.log",
                "/-/ready",
            )
        )
        prom_port = free_port()
        (tmp_path / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
                    "rule_files": [str(fast_rules(tmp_path / "rules.yml"))],
                    "alerting": {
                        "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
                    },
                    "scrape_configs": [
                        {
                            "job_name": "2fauth-monitor",
                            "honor_labels": True,
                            "static_configs": [
                                {"targets": [m.url.removeprefix("http://") for m in monitors.values()]}
                            ],
                        }
                    ],
                }
            )
        )
        daemons.append(
            Daemon(
                [
                    _tool("prometheus"),
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                prom_port,
                tmp_path / "prometheus.log",
                "/-/ready",
            )
        )
        yield {"sim": sim, "receiver": receiver, "prometheus": daemons[-1].url, "monitors": monitors}
    finally:
        for daemon in reversed(daemons):
            daemon.stop()
        receiver.close()
        sim.stop()


def query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    body = httpx.get(prometheus + "/api/v1/query", params={"query": promql}, timeout=5).json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def alerts(prometheus: str, state: str | None = None) -> list[dict[str, Any]]:
    found = httpx.get(prometheus + "/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return [a for a in found if state is None or a["state"] == state]


def delivered(receiver: Receiver) -> list[dict[str, Any]]:
    """The alerts Alertmanager posted to the webhook, firing or resolved."""
    return [alert for r in list(receiver.requests) for alert in json.loads(r["body"])["alerts"]]


def test_down_from_two_locations_fires_and_one_failing_path_does_not(stack: dict[str, Any]) -> None:
    prom, sim, receiver = stack["prometheus"], stack["sim"], stack["receiver"]

    def up_everywhere() -> bool:
        rows = query(prom, 'count by (location) (twofauth_check_status{instance="home",status="up"} == 1)')
        return {r["metric"].get("location") for r in rows} == {"home", "vps"}

    wait_for(up_everywhere, timeout=30, message="both locations scraped, every check up")
    assert {r["metric"]["instance"] for r in query(prom, 'up{job="2fauth-monitor"} == 1')} == {
        m.url.removeprefix("http://") for m in stack["monitors"].values()
    }

    # Only the VPS's path to the instance fails: down from one location, not from two.
    sim.set_faults(["server_error"], instance="path-vps")

    def down_seen_from_vps_only() -> bool:
        firing = [a["labels"] for a in alerts(prom, "firing") if a["labels"]["alertname"] == "TwoFAuthDown"]
        return bool(firing) and {a["location"] for a in firing} == {"vps"}

    wait_for(down_seen_from_vps_only, timeout=20, message="TwoFAuthDown firing from vps")
    settle = time.monotonic() + 4  # several scrapes and evaluations with one location down
    while time.monotonic() < settle:
        assert not [a for a in alerts(prom) if a["labels"]["alertname"] == SEVERAL]
        time.sleep(0.5)
    assert query(prom, 'twofauth_check_status{location="home",instance="home",status="up"} == 1')
    assert not [a for a in delivered(receiver) if a["labels"]["alertname"] == SEVERAL]

    # The instance itself fails: both locations see it down.
    sim.set_faults(["server_error"], instance="path-home")

    def several_firing() -> list[dict[str, Any]]:
        return [a for a in alerts(prom, "firing") if a["labels"]["alertname"] == SEVERAL]

    (alert,) = wait_for(several_firing, timeout=20, message=f"{SEVERAL} firing")
    assert alert["labels"]["instance"] == "home" and alert["labels"]["severity"] == "critical"
    assert float(alert["value"]) == 2

    # ... and Alertmanager routes it to the webhook.
    def posted() -> list[dict[str, Any]]:
        return [
            a for a in delivered(receiver) if a["labels"]["alertname"] == SEVERAL and a["status"] == "firing"
        ]

    (sent,) = wait_for(posted, timeout=20, message="Alertmanager's webhook delivery")
    assert sent["labels"]["instance"] == "home"
    assert sent["annotations"]["summary"] == "2FAuth home is down from 2 locations"

    # The Grafana dashboard's queries run on this Prometheus; those whose metrics these monitors
    # have (no TLS and no TOTP flow here: no expiry, no clock skew) return data for both locations.
    without_data = ("expiry", "clock_skew")
    for expr in queries(committed()):
        rows = query(prom, concrete(expr))
        if not any(name in expr for name in without_data):
            assert rows, f"no data for the dashboard's {expr}"
        if re.search(r"by \([^)]*location|without \(", expr):  # the series keep their location
            assert {r["metric"].get("location") for r in rows} == {"home", "vps"}, expr
