"""The browser check against the REAL 2FAuth v5.4.3 (tests/real2fauth.py), in real headless Chromium:
a healthy journey, the web app's entry script gone, a wrong password and a moved clock, each through
`check --json` as a user runs it, and a running monitor's page linking the failure's screenshot.

One real instance serves every test here, in order; each test puts back what it broke.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import run_cli, wait_for
from .real2fauth import Real2FAuth, wait_api_budget

pytestmark = [pytest.mark.real2fauth, pytest.mark.browser]

JOURNEY = ["load", "sign in", "accounts", "code", "sign out"]


@pytest.fixture(scope="module")
def real(real_factory) -> Real2FAuth:
    return real_factory()


def browser_instance(server: Real2FAuth, **browser: Any) -> dict[str, Any]:
    inst = server.monitor_instance(totp={"account_id": server.account_id})
    settings = {"email": server.info["email"], "password": server.info["password"], **browser}
    inst["checks"]["browser"] = settings
    inst["timeout"] = "10s"
    return inst


def check(write_config, server: Real2FAuth, **browser: Any) -> tuple[dict[str, dict[str, Any]], str, Path]:
    """`check --json` of one instance with the browser check: ({check: result}, all output, config)."""
    wait_api_budget(server, 15)
    config = write_config({"instances": [browser_instance(server, **browser)]})
    done = run_cli("check", "--json", "--config", str(config), timeout=120)
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    results = {r["check"]: r for r in json.loads(done.stdout)["results"]}
    return results, done.stdout + done.stderr, config


def brief(results: dict[str, dict[str, Any]]) -> dict[str, tuple[str, str | None]]:
    return {c: (r["status"], r["kind"]) for c, r in results.items()}


def screenshots(config: Path) -> list[Path]:
    return sorted((config.parent / "monitor-screenshots").glob("*.png"))


def test_check_with_the_browser_against_a_fresh_real_2fauth_is_up(real, write_config):
    # another account listed first: the journey must open the canary, not the first entry
    other = real.api(
        "POST",
        "/api/v1/twofaccounts",
        json={"uri": "otpauth://totp/Aardvark:zoo?secret=JBSWY3DPEHPK3PXP&issuer=Aardvark"},
    )
    assert other.status_code == 201, other.text
    ordered = [other.json()["id"], real.account_id]
    assert real.api("POST", "/api/v1/twofaccounts/reorder", json={"orderedIds": ordered}).status_code == 200
    results, output, config = check(write_config, real)
    assert brief(results) == {
        "live": ("up", None),
        "ready": ("up", None),
        "totp": ("up", None),
        "browser": ("up", None),
    }, results["browser"]
    browser = results["browser"]
    assert [s["name"] for s in browser["steps"]] == JOURNEY
    assert all(s["outcome"] == "ok" and s["duration_ms"] > 0 for s in browser["steps"])
    assert browser["steps"][3]["path"] == f"/api/v1/twofaccounts/{real.account_id}/otp"
    assert f"the code of account {real.account_id} on screen is right" in browser["message"]
    assert 0 < browser["latency_ms"] < 15_000  # the journey, not Chromium's start-up
    assert real.info["password"] not in output
    assert screenshots(config) == []  # an up journey keeps no screenshot


def test_a_correct_journey_slower_than_slow_after_is_degraded_slow(real, write_config):
    results, _, _ = check(write_config, real, slow_after="100ms")
    browser = results["browser"]
    assert (browser["status"], browser["kind"]) == ("degraded", "slow"), browser
    assert "slower than slow_after (0.1s)" in browser["message"]
    assert browser["message"].endswith("on screen is right and signed out"), browser["message"]


def test_entry_script_moved_away_is_frontend_while_the_api_checks_stay_up(real, write_config):
    script = next((real.app / "public" / "build" / "assets").glob("app-*.js"))
    moved = script.with_name(script.name + ".moved")
    script.rename(moved)
    try:
        results, _, config = check(write_config, real)
    finally:
        moved.rename(script)
    assert brief(results) == {
        "live": ("up", None),
        "ready": ("up", None),
        "totp": ("up", None),
        "browser": ("down", "frontend"),
    }, results["browser"]
    message = results["browser"]["message"]
    assert message.startswith("the web app did not render its sign-in form"), message
    assert f"the script /build/assets/{script.name} came as text/html" in message, message
    assert [s["name"] for s in results["browser"]["steps"]] == ["load"]
    shots = screenshots(config)
    assert len(shots) == 1 and shots[0].name.startswith("real-") and shots[0].stat().st_size > 1000


def test_wrong_password_is_auth_and_never_shown(real, write_config):
    wrong = "not-the-password-" + real.info["password"][:6]
    results, output, config = check(write_config, real, password=wrong)
    browser = results["browser"]
    assert (browser["status"], browser["kind"]) == ("down", "auth"), browser
    assert browser["message"] == (
        f"2FAuth refused the sign-in of {real.info['email']}: wrong email or password (HTTP 401)"
    )
    assert [(s["name"], s["method"], s["path"], s["status"], s["outcome"]) for s in browser["steps"]] == [
        ("load", "GET", "/", 200, "ok"),
        ("sign in", "POST", "/user/login", 401, "auth"),
    ]
    assert wrong not in output
    shots = screenshots(config)
    assert len(shots) == 1 and wrong not in shots[0].name


def test_server_clock_moved_makes_the_code_on_screen_wrong(real, write_config):
    real.restart(faketime="+120s")
    try:
        results, _, _ = check(write_config, real)
    finally:
        real.restart()
    assert brief(results)["totp"] == ("degraded", "clock_skew")
    browser = results["browser"]
    assert (browser["status"], browser["kind"]) == ("down", "otp_mismatch"), browser
    skew = re.search(
        r"it is the code of (\d+)s later; 2FAuth's clock is \+(\d+)s from ours", browser["message"]
    )
    assert skew and "is wrong now" in browser["message"], browser["message"]
    assert int(skew.group(1)) in (90, 120, 150) and 115 <= int(skew.group(2)) <= 125, browser["message"]
    assert [s["outcome"] for s in browser["steps"]] == ["ok", "ok", "ok", "otp_mismatch", "ok"]


def test_a_running_monitor_links_the_failure_screenshot_behind_basic_auth(real, write_config, start_monitor):
    wrong = "wrong-" + real.info["password"][:8]
    inst = browser_instance(real, password=wrong, interval="1h")
    auth = {"username": "ops", "password": "page-password-1"}
    config = write_config({"instances": [inst], "web": {"basic_auth": auth}})
    wait_api_budget(real, 15)
    mon = start_monitor(config)
    creds = ("ops", "page-password-1")

    def failed() -> str | None:
        page = httpx.get(f"{mon.url}/instances/real?refresh=0", auth=creds, timeout=10)
        return page.text if 'class="screenshot"' in page.text else None

    page = wait_for(failed, timeout=60, interval=1, message="the browser failure on the instance page")
    journey = page.split('<h2 id="journey">Latest browser journey</h2>', 1)[1].split("</section>", 1)[0]
    assert "<code>GET /</code>" in journey and "<code>POST /user/login</code>" in journey, journey
    assert '<tr class="step-fail">' in journey and ">auth</span>" in journey
    href = page.split('class="screenshot" href="', 1)[1].split('"', 1)[0]
    assert href.startswith("real/screenshots/real-") and href.endswith("Z.png"), href
    url = f"{mon.url}/instances/{href}"
    shot = httpx.get(url, auth=creds, timeout=10)
    assert shot.status_code == 200 and shot.headers["content-type"] == "image/png"
    assert shot.content.startswith(b"\x89PNG")
    assert httpx.get(url, timeout=10).status_code == 401  # the same auth as the page
    assert httpx.get(url.replace("real-2", "real-1"), auth=creds, timeout=10).status_code == 404
    mon.stop()
    db = config.parent / "monitor.db"
    stored = b"".join(p.read_bytes() for p in db.parent.glob("monitor.db*"))
    assert wrong.encode() not in stored
    rows = sqlite3.connect(db).execute("select kind from results where \"check\" = 'browser'").fetchall()
    assert rows and rows[0][0] == "auth"
    assert wrong not in mon.output()
