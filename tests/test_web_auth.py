"""Optional basic auth over real HTTP: the page, API, feed and /metrics need it; badges, /live,
/ready and static assets stay open; guessing is slowed per client address."""

from __future__ import annotations

import base64

import httpx
import pytest
import yaml

from monitor import simulator
from tests.conftest import MonitorProcess, free_port, instance_config, run_cli

PASSWORD = "correct horse battery"  # noqa: S105


def _config(sim_url: str) -> dict:
    return {
        "instances": [instance_config(sim_url, "home")],
        "web": {"title": "Private status", "basic_auth": {"username": "family", "password": PASSWORD}},
    }


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """One guarded monitor for the tests that stay under the failure limit."""
    tmp = tmp_path_factory.mktemp("auth")
    sim = simulator.start_in_thread()
    path = tmp / "monitor.yaml"
    path.write_text(yaml.safe_dump({**_config(sim.url), "storage": {"path": str(tmp / "m.db")}}))
    proc = MonitorProcess(path, free_port())
    try:
        proc.wait_live()
        yield proc
    finally:
        proc.stop()
        sim.stop()


@pytest.fixture
def fresh_guarded(sim, write_config, start_monitor):
    """A guarded monitor of its own, for tests that trip the limit or stop it."""
    return start_monitor(write_config(_config(sim.url)))


def _auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("path", ["/", "/instances/home", "/api/v1/status", "/feed.atom", "/metrics"])
def test_page_api_feed_and_metrics_need_credentials(guarded, path: str) -> None:
    anonymous = httpx.get(guarded.url + path, timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Basic realm="Private status", charset="UTF-8"'
    assert "family" not in anonymous.text
    assert httpx.get(guarded.url + path, headers=_auth("family", PASSWORD), timeout=5).status_code == 200


@pytest.mark.parametrize(
    "path", ["/live", "/badge/home/status.svg", "/badge/home/shields.json", "/static/style.css"]
)
def test_badges_probes_and_assets_stay_open(guarded, path: str) -> None:
    assert httpx.get(guarded.url + path, timeout=5).status_code == 200


def test_ready_stays_open(guarded) -> None:
    assert httpx.get(guarded.url + "/ready", timeout=5).status_code in (200, 503)  # open, whatever it says


@pytest.mark.parametrize(
    "header",
    [
        _auth("family", "wrong password")["Authorization"],
        _auth("Family", PASSWORD)["Authorization"],
        _auth("family", PASSWORD + "x")["Authorization"],
        "Basic !!!not-base64",
        "Bearer " + PASSWORD,
        "Basic " + base64.b64encode(PASSWORD.encode()).decode(),  # no colon at all
    ],
)
def test_wrong_credentials_are_refused(guarded, header: str) -> None:
    assert httpx.get(guarded.url + "/", headers={"Authorization": header}, timeout=5).status_code == 401


def test_repeated_failures_are_slowed_down_and_the_password_is_never_shown(fresh_guarded) -> None:
    url = fresh_guarded.url
    for path in ("/", "/api/v1/status", "/metrics"):
        assert PASSWORD not in httpx.get(url + path, headers=_auth("family", PASSWORD), timeout=5).text
    for _ in range(10):
        assert httpx.get(url + "/", headers=_auth("family", "guess"), timeout=5).status_code == 401
    blocked = httpx.get(url + "/", headers=_auth("family", PASSWORD), timeout=5)
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert httpx.get(url + "/badge/home/status.svg", timeout=5).status_code == 200  # still open
    fresh_guarded.stop()
    assert PASSWORD not in fresh_guarded.output()


def test_a_short_password_is_a_config_error(write_config) -> None:
    path = write_config(
        {
            "instances": [{"name": "a", "url": "http://127.0.0.1:9"}],
            "web": {"basic_auth": {"username": "u", "password": "short"}},
        }
    )
    done = run_cli("validate", "--config", str(path))
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == "error: web.basic_auth.password: use at least 8 characters (the value is not shown)"
    )
