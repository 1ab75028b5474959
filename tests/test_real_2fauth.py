"""The monitor against the REAL upstream 2FAuth v5.4.3 (tests/real2fauth.py): each fault a user
fears, made on the real server, through `check --json` and through a running monitor whose page,
status API and webhook must tell the truth.

Budget: 60 API requests a minute per instance from 127.0.0.1. Tests that undo their faults share
`real_plain` or `real_encrypted`; a test that spends much, or cannot undo, takes its own instance.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from monitor import otp

from .conftest import run_cli, wait_for
from .receiver import Receiver

pytestmark = pytest.mark.real2fauth


def check_json(config: Path) -> dict[str, dict[str, Any]]:
    """`2fauth-monitor check --json` as a user runs it: {check: result} of the one instance."""
    done = run_cli("check", "--json", "--config", str(config))
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    return {r["check"]: r for r in json.loads(done.stdout)["results"]}


def brief(result: dict[str, Any]) -> tuple[str, str | None]:
    return result["status"], result["kind"]


def config_for(write_config, *instances: dict[str, Any], **extra: Any) -> Path:
    return write_config({"instances": list(instances), **extra})


# --- check --json, one fault at a time ---------------------------------------------------------


def test_healthy_real_2fauth_is_up_and_its_release_is_detected(real_plain, write_config):
    inst = real_plain.monitor_instance(totp={"account_id": real_plain.account_id})
    results = check_json(config_for(write_config, inst))
    assert {c: brief(r) for c, r in results.items()} == {
        "live": ("up", None),
        "ready": ("up", None),
        "totp": ("up", None),
    }, results
    assert results["ready"]["path"] == "/api/v1/twofaccounts/count"  # {"count": N}, not {"total"}
    assert results["live"]["version"] == "5.4.3"
    release = results["totp"]["release"]
    assert release.startswith("API of 2FAuth v5 ("), release
    assert "no next_password" in release and "web page" in release
    # secrets are in clear by default: nothing may claim that something deciphered
    totp = results["totp"]
    assert "decipher" not in totp["message"], totp["message"]
    assert "APP_KEY canary is inactive" in totp["message"]
    assert "Protect sensitive data" in totp["notice"]


def test_app_key_changed_without_encryption_is_invisible_and_said_so(real_plain, write_config):
    inst = real_plain.monitor_instance(totp={"account_id": real_plain.account_id})
    path = config_for(write_config, inst)
    old = real_plain.app_key()
    real_plain.set_app_key()
    try:
        totp = check_json(path)["totp"]
    finally:
        real_plain.set_app_key(old)
    # 2FAuth stores the secret in clear: the new key changes nothing, and the monitor says it cannot see it
    assert brief(totp) == ("up", None), totp
    assert "stored in clear" in totp["message"] and "APP_KEY canary is inactive" in totp["message"]


def test_app_key_changed_with_encryption_is_decrypt(real_encrypted, write_config):
    inst = real_encrypted.monitor_instance(totp={"account_id": real_encrypted.account_id})
    path = config_for(write_config, inst)
    old = real_encrypted.app_key()
    real_encrypted.set_app_key()
    try:
        broken = check_json(path)
    finally:
        real_encrypted.set_app_key(old)
    assert brief(broken["totp"]) == ("down", "decrypt"), broken["totp"]
    assert brief(broken["live"]) == ("up", None) and brief(broken["ready"]) == ("up", None)
    back = check_json(path)["totp"]
    assert brief(back) == ("up", None), back
    assert "deciphers with APP_KEY" in back["message"]
    assert back["notice"] is None


def test_maintenance_mode_is_down_then_back(real_plain, write_config):
    path = config_for(write_config, real_plain.monitor_instance())
    real_plain.artisan("down")
    try:
        down = check_json(path)
    finally:
        real_plain.artisan("up")
    assert {c: brief(r) for c, r in down.items()} == dict.fromkeys(
        ("live", "ready", "totp"), ("down", "maintenance")
    ), down
    assert {brief(r) for r in check_json(path).values()} == {("up", None)}


def test_database_file_gone_is_server_error_while_the_web_server_answers(real_plain, write_config):
    path = config_for(write_config, real_plain.monitor_instance())
    away = real_plain.database.with_suffix(".away")
    real_plain.database.rename(away)
    try:
        gone = check_json(path)
    finally:
        away.rename(real_plain.database)
    assert brief(gone["live"]) == ("up", None)
    assert brief(gone["ready"]) == ("down", "server_error"), gone["ready"]
    assert brief(gone["totp"]) == ("down", "server_error"), gone["totp"]
    assert "database" in gone["ready"]["message"]


def test_non_admin_token_cannot_know_about_encryption(real_plain, write_config):
    server = real_plain
    token = server.non_admin_token()
    made = server.api(
        "POST",
        "/api/v1/twofaccounts",
        token=token,
        json={"uri": f"otpauth://totp/Canary:reader?secret={server.secret}&issuer=Canary"},
    )
    assert made.status_code == 201, made.text
    inst = server.monitor_instance(token=token, totp={"account_id": made.json()["id"]})
    totp = check_json(config_for(write_config, inst))["totp"]
    assert brief(totp) == ("up", None), totp
    assert "not a 2FAuth administrator" in totp["message"] and "decipher" not in totp["message"]
    assert "not known" in totp["notice"]


# --- canary flavours ---------------------------------------------------------------------------


def _secret_with_md5_offsets(wanted: range, period: int, bits: int = 160) -> str:
    """A random secret whose md5 truncation offset is in `wanted` for this step and the next two."""
    now = int(time.time())
    while True:
        secret = base64.b32encode(secrets.token_bytes(bits // 8)).decode().rstrip("=")
        if all(otp.md5_offset(secret, now + k * period, period=period) in wanted for k in range(3)):
            return secret


FLAVOURS: list[tuple[str, dict[str, Any]]] = [
    ("sha1-6-30", {"algorithm": "sha1", "digits": 6, "period": 30}),
    ("sha256-8-60", {"algorithm": "sha256", "digits": 8, "period": 60}),
    ("sha512-10-15", {"algorithm": "sha512", "digits": 10, "period": 15}),
    ("sha1-5-45", {"algorithm": "sha1", "digits": 5, "period": 45}),
    ("sha256-7-20", {"algorithm": "sha256", "digits": 7, "period": 20}),
    ("sha512-9-30", {"algorithm": "sha512", "digits": 9, "period": 30}),
    ("steam", {"otp_type": "steamtotp"}),
    ("sha1-80bit", {"algorithm": "sha1", "canary_secret": "JBSWY3DPEHPK3PXP"}),
    ("sha512-80bit", {"algorithm": "sha512", "digits": 8, "canary_secret": "GEZDGNBVGY3TQOJQ"}),
]


def test_every_canary_flavour_is_up_on_the_real_server(real_factory, write_config):
    server = real_factory()
    md5_ok = _secret_with_md5_offsets(range(0, 13), 30)
    md5_short = _secret_with_md5_offsets(range(13, 16), 30)
    flavours = [
        *FLAVOURS,
        ("md5-computable", {"algorithm": "md5", "canary_secret": md5_ok}),
        ("md5-8-short-offset", {"algorithm": "md5", "digits": 8, "canary_secret": md5_short}),
    ]
    # a stored md5 canary at a short offset: 2FAuth refuses to list its code too
    uri = f"otpauth://totp/Md5:md5?secret={md5_short}&issuer=Md5&algorithm=MD5&digits=8"
    made = server.api("POST", "/api/v1/twofaccounts", json={"uri": uri})
    assert made.status_code == 201, made.text
    flavours.append(
        (
            "md5-stored-short-offset",
            {"algorithm": "md5", "digits": 8, "canary_secret": md5_short, "account_id": made.json()["id"]},
        )
    )
    only_totp = {"live": {"enabled": False}, "ready": {"enabled": False}}
    instances = [server.monitor_instance(name, totp=totp, checks=only_totp) for name, totp in flavours]
    done = run_cli("check", "--json", "--config", str(config_for(write_config, *instances)))
    assert "Traceback" not in done.stderr
    results = {r["instance"]: r for r in json.loads(done.stdout)["results"]}
    for name, _ in flavours:
        assert brief(results[name]) == ("up", None), (name, results[name]["message"])
    assert "codes match" in results["md5-computable"]["message"]
    short = results["md5-8-short-offset"]
    assert "2FAuth cannot compute md5 codes at this time step" in short["message"]
    assert "2FAuth limitation" in short["message"]
    # the refusal was real: 2FAuth answered 400 to the code request
    assert short["http_status"] == 400
    stored = results["md5-stored-short-offset"]
    assert "2FAuth cannot compute md5 codes at this time step" in stored["message"], stored
    server.stop()


def test_validate_warns_about_md5(real_plain, write_config):
    path = config_for(write_config, real_plain.monitor_instance(totp={"algorithm": "md5"}))
    done = run_cli("validate", "--config", str(path))
    assert done.returncode == 0
    assert "md5 accounts in 2FAuth fail about 3 time steps in 16" in done.stdout


# --- faults that cannot be undone cheaply, each on its own instance ----------------------------


def test_clock_moved_is_clock_skew_and_server_stopped_is_connect(real_factory, write_config, start_monitor):
    server = real_factory()
    path = config_for(write_config, server.monitor_instance(checks={"ready": {"enabled": False}}))
    server.restart(faketime="+120s")
    skewed = check_json(path)
    assert brief(skewed["totp"]) == ("degraded", "clock_skew"), skewed["totp"]
    assert 110 <= skewed["totp"]["skew_s"] <= 130
    assert brief(skewed["live"]) == ("up", None)
    _degraded_run(server, write_config, start_monitor, {"totp": "clock_skew"}, ready=False)
    server.stop()
    stopped = check_json(path)
    assert {c: brief(r) for c, r in stopped.items()} == dict.fromkeys(("live", "totp"), ("down", "connect"))
    server.restart()
    assert {brief(r) for r in check_json(path).values()} == {("up", None)}
    server.stop()


def test_throttle_exhausted_is_rate_limited_and_nothing_down(real_factory, write_config, start_monitor):
    server = real_factory()
    path = config_for(write_config, server.monitor_instance())
    statuses = [server.api("GET", "/api/v1/twofaccounts/count").status_code for _ in range(61)]
    assert statuses[-1] == 429, statuses
    limited = check_json(path)
    assert brief(limited["live"]) == ("up", None)
    assert brief(limited["ready"]) == ("degraded", "rate_limited"), limited["ready"]
    assert brief(limited["totp"]) == ("degraded", "rate_limited"), limited["totp"]
    # 2FAuth's Retry-After (the rest of its one-minute window) is honoured
    pause = re.search(r"pausing API checks for (\d+)s", limited["ready"]["message"])
    assert pause and 1 <= int(pause[1]) <= 60, limited["ready"]["message"]
    _degraded_run(server, write_config, start_monitor, {"ready": "rate_limited", "totp": "rate_limited"})
    server.stop()


# --- a running monitor: page, status API and one alert per outage ------------------------------


def _degraded_run(
    server, write_config, start_monitor, expected: dict[str, str], *, ready: bool = True
) -> None:
    """A short run while the fault lasts: the status API and page say degraded with the kind,
    the web server stays up, and nothing is alerted as down (only as degraded)."""
    receiver = Receiver()
    checks = {} if ready else {"ready": {"enabled": False}}
    inst = server.monitor_instance(interval="3s", timeout="3s", checks=checks)
    mon = start_monitor(_run_config(write_config, receiver, inst))
    try:

        def told() -> dict[str, Any] | None:
            inst = _status(mon)["instances"][0]
            shown = {c["name"]: (c["status"], c["kind"]) for c in inst["checks"]}
            wanted = {c: ("degraded", k) for c, k in expected.items()} | {"live": ("up", None)}
            return inst if all(shown.get(c) == v for c, v in wanted.items()) else None

        inst = wait_for(told, timeout=30, interval=0.5, message=f"the status API to say {expected}")
        assert inst["status"] == "degraded"
        assert _status(mon)["overall"]["text"] == "Degraded service"
        words = {"clock_skew": "server clock off", "rate_limited": "rate limited"}
        page_url = mon.url + "/instances/real"
        for kind in expected.values():
            wait_for(lambda k=kind: words[k] in httpx.get(page_url, timeout=5).text, timeout=15, message=kind)
        events = _events(receiver, 0)
        assert {e["event"] for e in events} <= {"degraded"}, events
    finally:
        mon.stop()
        receiver.close()


def _events(receiver: Receiver, since: int) -> list[dict[str, Any]]:
    return [json.loads(r["body"]) for r in receiver.requests[since:]]


def _status(mon) -> dict[str, Any]:
    return httpx.get(mon.url + "/api/v1/status", timeout=5).json()


def _run_config(write_config, receiver: Receiver, *instances: dict[str, Any]) -> Path:
    return write_config(
        {
            "instances": list(instances),
            "notifiers": [{"name": "hook", "type": "webhook", "url": receiver.url + "/hook"}],
            "alerts": {"failure_threshold": 1, "success_threshold": 1, "notify": ["hook"]},
        }
    )


def _outage(mon, receiver, make, undo, checks: set[str], kind: str, cause: str) -> None:
    """Make a fault, see it on the page and the status API, undo it: exactly one down alert for the
    instance, naming every check it broke (the cause first, the others its consequences), and one
    recovery."""
    since = len(receiver.requests)
    make()
    try:

        def down_alerted() -> bool:
            return any(e["event"] == "down" for e in _events(receiver, since))

        wait_for(down_alerted, timeout=40, interval=0.3, message=f"the down alert for {sorted(checks)}")

        def told() -> dict[str, Any] | None:
            inst = _status(mon)["instances"][0]
            shown = {c["name"]: (c["status"], c["kind"]) for c in inst["checks"]}
            return inst if all(shown[c] == ("down", kind) for c in checks) else None

        inst = wait_for(told, timeout=20, interval=0.5, message=f"the status API to say {kind}")
        assert inst["status"] == "down"
        page_url = mon.url + "/instances/" + inst["name"]
        # the page is cached for up to 5 s
        wait_for(lambda: "Down" in httpx.get(page_url, timeout=5).text, timeout=15, message="the page")
    finally:
        undo()

    def recovered() -> bool:
        return any(e["event"] == "resolved" for e in _events(receiver, since))

    wait_for(recovered, timeout=40, interval=0.3, message="the recovery alert")
    wait_for(lambda: _status(mon)["overall"]["status"] == "up", timeout=20, message="all up again")
    time.sleep(1.0)  # a late duplicate would arrive now
    events = _events(receiver, since)
    assert [e["event"] for e in events] == ["down", "resolved"], events
    down, resolved = events
    assert (down["check"], down["kind"]) == (cause, kind)
    assert {c["check"] for c in down["checks"]} == checks == {c["check"] for c in resolved["checks"]}
    assert {c["check"]: c["consequence_of"] for c in down["checks"]} == {
        c: None if c == cause else cause for c in checks
    }
    assert down["title"].startswith(f"{down['instance_label']} is down: {down['check_label']} ({kind})")


@pytest.mark.timeout(300)
def test_run_tells_the_truth_through_real_outages(real_factory, write_config, start_monitor):
    """Maintenance, the database file gone and the server stopped, one after the other, on one
    running monitor: ~40 API requests a minute (ready every 3 s, totp every 6 s)."""
    server = real_factory()
    receiver = Receiver()
    inst = server.monitor_instance(interval="3s", timeout="3s", totp={"interval": "6s"})
    mon = start_monitor(_run_config(write_config, receiver, inst))
    try:
        wait_for(
            lambda: _status(mon)["overall"]["text"] == "All systems operational",
            timeout=30,
            message="all systems operational",
        )
        status = _status(mon)["instances"][0]
        assert status["version"] == "5.4.3"
        assert status["release"].startswith("API of 2FAuth v5")
        page = httpx.get(mon.url + "/instances/real", timeout=5).text
        assert "API of 2FAuth v5" in page and "All systems operational" in httpx.get(mon.url + "/").text
        _outage(
            mon,
            receiver,
            lambda: server.artisan("down"),
            lambda: server.artisan("up"),
            {"live", "ready", "totp"},
            "maintenance",
            "live",
        )
        away = server.database.with_suffix(".away")
        _outage(
            mon,
            receiver,
            lambda: server.database.rename(away),
            lambda: away.rename(server.database),
            {"ready", "totp"},
            "server_error",
            "ready",
        )
        _outage(mon, receiver, server.stop, server.restart, {"live", "ready", "totp"}, "connect", "live")
        assert "Traceback" not in mon.output()
    finally:
        receiver.close()
        server.stop()


def test_run_sees_app_key_change_only_with_encryption(real_encrypted, write_config, start_monitor):
    receiver = Receiver()
    inst = real_encrypted.monitor_instance(
        interval="4s",
        timeout="4s",
        totp={"account_id": real_encrypted.account_id},  # 3 API requests every 4 s
        checks={"ready": {"enabled": False}},
    )
    mon = start_monitor(_run_config(write_config, receiver, inst))
    old = real_encrypted.app_key()
    try:
        wait_for(lambda: _status(mon)["overall"]["status"] == "up", timeout=30, message="up")
        _outage(
            mon,
            receiver,
            real_encrypted.set_app_key,
            lambda: real_encrypted.set_app_key(old),
            {"totp"},
            "decrypt",
            "totp",
        )
        assert not _status(mon)["instances"][0]["notices"]  # encryption on: the canary is active
    finally:
        real_encrypted.set_app_key(old)
        receiver.close()


def test_run_page_says_the_app_key_canary_is_inactive_without_encryption(
    real_plain, write_config, start_monitor
):
    receiver = Receiver()
    inst = real_plain.monitor_instance(
        interval="5s",
        timeout="5s",
        totp={"account_id": real_plain.account_id},
        checks={"ready": {"enabled": False}},
    )
    mon = start_monitor(_run_config(write_config, receiver, inst))
    try:
        notices = wait_for(lambda: _status(mon)["instances"][0]["notices"], timeout=30, message="notice")
        assert "APP_KEY canary is inactive" in notices[0]
        page = httpx.get(mon.url + "/instances/real", timeout=5).text
        assert "APP_KEY canary is inactive" in page and "Protect sensitive data" in page
    finally:
        receiver.close()


def test_run_token_revoked_in_2fauth_is_auth_then_recovers_with_a_new_token(
    real_factory, write_config, start_monitor, tmp_path
):
    server = real_factory()
    receiver = Receiver()
    # the TOTP flow alone, 2 API requests every 3 s
    inst = server.monitor_instance(interval="3s", timeout="3s", checks={"ready": {"enabled": False}})
    path = _run_config(write_config, receiver, inst)
    mon = start_monitor(path)
    replacement: dict[str, str] = {}

    def revoke() -> None:
        assert server.revoke_all_tokens(), "no token to revoke"

    def new_token() -> None:
        web = server.web_session()
        try:
            made = web.post(
                "/oauth/personal-access-tokens",
                json={"name": "monitor-2"},
                headers={"X-XSRF-TOKEN": _unquote_cookie(web)},
            )
        finally:
            web.close()
        replacement["token"] = made.json()["accessToken"]
        data = yaml.safe_load(path.read_text())
        data["instances"][0]["token"] = replacement["token"]
        path.write_text(yaml.safe_dump(data))
        mon.proc.send_signal(signal.SIGHUP)

    try:
        wait_for(lambda: _status(mon)["overall"]["status"] == "up", timeout=30, message="up")
        _outage(mon, receiver, revoke, new_token, {"totp"}, "auth", "totp")
    finally:
        receiver.close()
        server.stop()


def _unquote_cookie(web: httpx.Client) -> str:
    from urllib.parse import unquote

    return unquote(web.cookies.get("XSRF-TOKEN") or "")


# --- closed pipes -----------------------------------------------------------------------------


def test_check_json_into_a_closed_pipe_ends_quietly(real_plain, write_config):
    import subprocess
    import sys

    from .conftest import ROOT

    path = config_for(write_config, real_plain.monitor_instance(checks={"ready": {"enabled": False}}))
    shell = subprocess.run(
        ["bash", "-c", f'"{sys.executable}" -m monitor check --json --config "{path}" | head -n 0'],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert shell.stderr == "", shell.stderr
    assert shell.returncode == 0
