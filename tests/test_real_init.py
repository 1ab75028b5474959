"""`init`, then `check`, against a fresh real 2FAuth v5.4.3: every check up, the canary account
created through 2FAuth's own API and read back by the TOTP flow."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from .conftest import ROOT, run_cli

pytestmark = pytest.mark.real2fauth


def test_init_then_check_is_all_up_on_a_fresh_real_2fauth(real_factory, tmp_path):
    server = real_factory()
    token = tmp_path / "twofauth_token"
    token.write_text(server.token)
    token.chmod(0o600)
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "init", "--url", server.url, "--token-file", str(token),
         "--create-canary", "--out", str(tmp_path / "monitor.yaml")],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"2FAuth 5.4.3 answers at {server.url} (health: /up)" in done.stdout
    assert "release: API of 2FAuth v5" in done.stdout

    config = yaml.safe_load((tmp_path / "monitor.yaml").read_text())
    totp = config["instances"][0]["checks"]["totp"]
    stored = server.api("GET", f"/api/v1/twofaccounts/{totp['account_id']}").json()
    assert (stored["service"], stored["account"], stored["otp_type"]) == (
        "2fauth-monitor canary",
        "canary",
        "totp",
    )
    secret = (tmp_path / "canary_secret").read_text().strip()
    assert stored["secret"].rstrip("=") == secret and secret != server.secret  # a fresh one

    check = run_cli("check", "--config", str(tmp_path / "monitor.yaml"), "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    results = {r["check"]: r for r in yaml.safe_load(check.stdout)["results"]}
    assert {c: r["status"] for c, r in results.items()} == {"live": "up", "ready": "up", "totp": "up"}
    assert f"stored account {totp['account_id']} gives the right code" in results["totp"]["message"]
    for text in (check.stdout, done.stdout, done.stderr, (tmp_path / "monitor.yaml").read_text()):
        assert server.token not in text and secret not in text
