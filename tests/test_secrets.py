"""Known secret values go through every command, page, API, metric, log and alert path, and none
of them appears anywhere: outputs, logs, pages, alert bodies, rendered files, the database."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml

from monitor import simulator

from .conftest import instance_config, run_cli, wait_for
from .receiver import Receiver

CANARY = "KRUGS4ZANFZSAYJAONSWG4TFOQQGG33EMU"  # base32, used nowhere else
URL_PASSWORD = "url-pa55word-9d2f"
WEBHOOK_SECRET = "whsec-7c1e0b5a9f"
HOOK_PATH_TOKEN = "hookpath-3b8e71aa"
APPRISE_TOKEN = "apprise-tok-55e2c0"
STATUS_PASSWORD = "status-pw-a41f96"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_no_secret_appears_anywhere(tmp_path, write_config, start_monitor, receiver):
    token = simulator.make_token(exp=2_000_000_000)
    sim = simulator.start_in_thread(tokens=(token,))
    secrets = [token, CANARY, URL_PASSWORD, WEBHOOK_SECRET, HOOK_PATH_TOKEN, APPRISE_TOKEN, STATUS_PASSWORD]
    try:
        url = sim.url.replace("http://", f"http://monitor:{URL_PASSWORD}@")
        inst = instance_config(url, interval="1s", timeout="1s", show_url=True)
        inst["token"] = token
        inst["checks"]["totp"] = {"canary_secret": CANARY, "account_id": simulator.CANARY_ACCOUNT_ID}
        config = {
            "web": {"basic_auth": {"username": "family", "password": STATUS_PASSWORD}},
            "instances": [inst],
            "notifiers": [
                {
                    "name": "ops",
                    "type": "webhook",
                    "url": f"{receiver.url}/hook/{HOOK_PATH_TOKEN}",
                    "secret": WEBHOOK_SECRET,
                },
                {
                    "name": "json",
                    "type": "apprise",
                    "url": f"json://{receiver.url.removeprefix('http://')}/{APPRISE_TOKEN}",
                },
            ],
            "alerts": {"failure_threshold": 1, "success_threshold": 1, "notify": ["ops", "json"]},
        }
        path = write_config(config)
        outputs: list[str] = []

        for args in (
            ["validate"],
            ["check"],
            ["check", "--json"],
            ["test-alert"],
            ["test-alert", "--notifier", "ops"],
        ):
            proc = run_cli(*args, "--config", str(path))
            outputs += [proc.stdout, proc.stderr]
        # a configuration error whose bad value is a secret: the message must not echo it
        bad = tmp_path / "bad.yaml"
        bad.write_text(
            yaml.safe_dump(
                {
                    "instances": [
                        {
                            "name": "x",
                            "url": "http://x",
                            "tokn": token,
                            "checks": {"totp": {"canary_secret": CANARY + "!"}},
                        }
                    ]
                }
            )
        )
        proc = run_cli("validate", "--config", str(bad))
        assert proc.returncode == 2
        outputs += [proc.stdout, proc.stderr]

        mon = start_monitor(path, env={})
        auth = ("family", STATUS_PASSWORD)
        wait_for(lambda: httpx.get(mon.url + "/ready").status_code == 200, message="ready")
        for faults in (["wrong_codes"], ["server_error"], ["rate_limited"], []):
            sim.set_faults(faults)
            wait_for(
                lambda f=faults: httpx.get(mon.url + "/api/v1/status", auth=auth).status_code == 200,
                message=str(faults),
            )
            wait_for(
                lambda n=len(receiver.requests): len(receiver.requests) > n,
                timeout=20,
                message=f"an alert for {faults or 'recovery'}",
            )
        pages = [
            "/",
            "/instances/home",
            "/api/v1/status",
            "/api/v1/instances/home/history?check=totp&window=24h",
            "/badge/home/status.svg",
            "/badge/home/uptime.svg",
            "/badge/home/latency.svg",
            "/badge/home/shields.json?type=status",
            "/feed.atom",
            "/metrics",
            "/live",
            "/ready",
            "/instances/nope",
            "/static/../monitor.yaml",
        ]
        for page in pages:
            for with_auth in (True, False):
                r = httpx.get(mon.url + page, auth=auth if with_auth else None)
                outputs.append(f"{page} {r.status_code} {dict(r.headers)} {r.text}")
        bad_login = httpx.get(mon.url + "/", auth=("family", STATUS_PASSWORD + "x"))
        assert bad_login.status_code == 401
        mon.stop()
        outputs.append(mon.output())

        out_dir = tmp_path / "site"
        proc = run_cli("render", "--config", str(path), "--out", str(out_dir))
        assert proc.returncode == 0, proc.stderr
        outputs += [proc.stdout, proc.stderr]
        files = [p for p in out_dir.rglob("*") if p.is_file()]
        files += [p for p in tmp_path.glob("monitor.db*")]
        assert files
    finally:
        sim.stop()

    assert receiver.requests, "no alert reached the receiver"
    for r in receiver.requests:
        outputs.append(f"{json.dumps(r['headers'])} {r['body'].decode(errors='replace')}")

    haystack = "\n".join(outputs).encode()
    blobs = [haystack] + [f.read_bytes() for f in files]
    for secret in secrets:
        for blob in blobs:
            i = blob.find(secret.encode())
            assert i < 0, f"a secret leaked ({secret[:6]}...): {blob[max(0, i - 300) : i + 60]!r}"
    # the webhook is signed with the secret, and the signature is all a receiver sees of it
    assert any("x-monitor-signature" in r["headers"] for r in receiver.requests)
    assert Path(tmp_path / "monitor.db").exists()
