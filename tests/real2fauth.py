"""The real upstream 2FAuth v5.4.3 on loopback, for the tests marked `real2fauth`.

The fixture (`serve` and the app's tarball) lives beside the clone in CI: `<repo>/../shared/real-2fauth`,
or wherever TWOFAUTH_FIXTURE_DIR points. Without it those tests fail, saying so in one line: a suite
that proves the monitor against the real server must not pass by skipping it.

Budget: 2FAuth allows THROTTLE_API (60) API requests a minute per client IP per instance; every
test here talks from 127.0.0.1, so tests that share an instance share that budget.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_ENV = "TWOFAUTH_FIXTURE_DIR"


def fixture_dir() -> Path:
    """Where `serve` is; pytest.fail (not skip) with one line when it is missing."""
    where = Path(os.environ.get(FIXTURE_ENV) or ROOT.parent / "shared" / "real-2fauth")
    if not (where / "serve").is_file():
        pytest.fail(
            f"real 2FAuth fixture not found: no {where / 'serve'} (put shared/real-2fauth beside the clone "
            f"or set {FIXTURE_ENV})",
            pytrace=False,
        )
    return where


class Real2FAuth:
    """One fresh real 2FAuth instance started by `serve start` in its own folder."""

    def __init__(self, folder: Path, *, encryption: bool = False) -> None:
        self.folder = folder
        self.serve = fixture_dir() / "serve"
        args = [str(self.serve), "start", *(["--encryption"] if encryption else []), str(folder)]
        done = subprocess.run(args, capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            pytest.fail(f"serve start failed: {done.stderr.strip()[-2000:]}", pytrace=False)
        self.info: dict[str, Any] = json.loads((folder / "instance.json").read_text())
        self.url: str = self.info["url"]
        self.token: str = self.info["token"]
        self.secret: str = self.info["canary_secret"]
        self.account_id: int = self.info["account_id"]
        self.app = Path(self.info["app_dir"])
        self.env_file = Path(self.info["env_file"])
        self.database = folder / "data" / "database.sqlite"
        self.stopped = False

    # --- the server ------------------------------------------------------------------------

    def stop(self) -> None:
        subprocess.run([str(self.serve), "stop", str(self.folder)], capture_output=True, timeout=30)
        self.stopped = True

    def restart(self, faketime: str | None = None) -> None:
        args = [str(self.serve), "restart", str(self.folder), *(["--faketime", faketime] if faketime else [])]
        done = subprocess.run(args, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            pytest.fail(f"serve restart failed: {done.stderr.strip()[-2000:]}", pytrace=False)
        self.stopped = False

    def artisan(self, *args: str) -> str:
        php = shutil.which("php") or "php"
        done = subprocess.run(
            [php, "artisan", *args], cwd=self.app, capture_output=True, text=True, timeout=60, check=True
        )
        return done.stdout

    def app_key(self) -> str:
        for line in self.env_file.read_text().splitlines():
            if line.startswith("APP_KEY="):
                return line.split("=", 1)[1]
        raise AssertionError("no APP_KEY in .env")

    def set_app_key(self, key: str | None = None) -> str:
        """Write APP_KEY (a new random one by default) into .env; 2FAuth reads it on each request."""
        key = key or "base64:" + base64.b64encode(secrets.token_bytes(32)).decode()
        lines = self.env_file.read_text().splitlines()
        self.env_file.write_text(
            "\n".join(f"APP_KEY={key}" if line.startswith("APP_KEY=") else line for line in lines) + "\n"
        )
        return key

    def api_requests_in_log(self) -> int:
        """API requests the PHP server logged so far (its access log is in server.log)."""
        log = (self.folder / "server.log").read_text(errors="replace")
        return sum(1 for line in log.splitlines() if "URI: /api/v1/" in line)

    # --- talking to it ---------------------------------------------------------------------

    def api(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Accept": "application/json", "Authorization": f"Bearer {token or self.token}"}
        headers.update(kwargs.pop("headers", {}))
        return httpx.request(method, self.url + path, headers=headers, timeout=15, **kwargs)

    def web_session(self) -> httpx.Client:
        """A logged-in web session of the fixture's admin user (cookies + X-XSRF-TOKEN)."""
        client = httpx.Client(base_url=self.url, timeout=15, headers={"Accept": "application/json"})
        client.get("/refresh-csrf").raise_for_status()
        login = client.post(
            "/user/login",
            json={"email": self.info["email"], "password": self.info["password"]},
            headers=_xsrf(client),
        )
        assert login.status_code == 200, f"web login answered {login.status_code}: {login.text[:200]}"
        return client

    def revoke_all_tokens(self) -> list[int]:
        """Revoke the user's personal access tokens the way the 2FAuth UI does; their ids."""
        web = self.web_session()
        try:
            listed = web.get("/oauth/personal-access-tokens")
            assert listed.status_code == 200, listed.text[:200]
            ids = [t["id"] for t in listed.json() if not t.get("revoked")]
            for token_id in ids:
                gone = web.delete(f"/oauth/personal-access-tokens/{token_id}", headers=_xsrf(web))
                assert gone.status_code in (200, 204), (
                    f"revoke answered {gone.status_code}: {gone.text[:200]}"
                )
        finally:
            web.close()
        return ids

    def non_admin_token(self) -> str:
        """Register a second (so not admin) user through the web app and make it a token."""
        web = httpx.Client(base_url=self.url, timeout=15, headers={"Accept": "application/json"})
        try:
            web.get("/refresh-csrf").raise_for_status()
            password = secrets.token_urlsafe(18)
            user = {"name": "reader", "email": "reader@example.com", "password": password}
            made = web.post("/user", json={**user, "password_confirmation": password}, headers=_xsrf(web))
            assert made.status_code == 201, f"registration answered {made.status_code}: {made.text[:200]}"
            token = web.post("/oauth/personal-access-tokens", json={"name": "reader"}, headers=_xsrf(web))
            assert token.status_code == 200, token.text[:200]
            return str(token.json()["accessToken"])
        finally:
            web.close()

    def monitor_instance(self, name: str = "real", **extra: Any) -> dict[str, Any]:
        """An instance entry of the monitor's configuration watching this server."""
        totp: dict[str, Any] = {"canary_secret": self.secret}
        inst: dict[str, Any] = {"name": name, "url": self.url, "token": self.token, "timeout": "5s"}
        for key, value in extra.items():
            if key == "totp":
                totp.update(value)
            else:
                inst[key] = value
        inst["checks"] = {"totp": totp, **inst.get("checks", {})}
        return inst


def _xsrf(client: httpx.Client) -> dict[str, str]:
    return {"X-XSRF-TOKEN": unquote(client.cookies.get("XSRF-TOKEN") or "")}


def wait_api_budget(server: Real2FAuth, needed: int, *, max_wait: float = 65.0) -> None:
    """Wait until the instance's API limiter has `needed` requests left (the headers say how many)."""
    deadline = time.monotonic() + max_wait
    while True:
        answer = httpx.get(server.url + "/up", timeout=10)  # not throttled; proves it answers
        answer.raise_for_status()
        probe = server.api("GET", "/api/v1/twofaccounts/count")
        left = int(probe.headers.get("x-ratelimit-remaining", "0")) if probe.status_code == 200 else 0
        if left >= needed or time.monotonic() > deadline:
            return
        time.sleep(min(5.0, max(0.5, deadline - time.monotonic())))
