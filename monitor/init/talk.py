"""What `init` asks 2FAuth, through the checks' own HTTP code (same errors, same redirect rules):
is it there (the live check: /up or /live, and the version), is the token good (GET /api/v1/user),
and, when asked, the canary account created (POST /api/v1/twofaccounts with an otpauth URI)."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from monitor.checks import InstanceContext, run_check
from monitor.checks.http import CheckFailure, api_message, classify_status, fetch, with_release_hint
from monitor.init.answers import EXIT_TWOFAUTH, EXIT_USER, InitError
from monitor.models import Kind, Status, Step

CANARY_NAME = "2fauth-monitor canary"  # the service name 2FAuth shows for the account
CANARY_ACCOUNT = "canary"
# a failure of these kinds means the URL or the token given is wrong, not that 2FAuth is broken
USER_KINDS = {Kind.AUTH, Kind.HTTP_STATUS, Kind.NOT_A_HEALTH_ENDPOINT}


@dataclass
class Found:
    path: str  # the health path the live check uses: /up or /live
    version: str | None
    user: str
    admin: bool


def new_secret() -> str:
    """A fresh random 160-bit base32 secret (RFC 4226's recommended length), without padding."""
    return base64.b32encode(os.urandom(20)).decode("ascii").rstrip("=")


def _exit_code(kind: Kind | None, message: str) -> int:
    if kind in USER_KINDS or message.startswith("DNS: the name"):
        return EXIT_USER
    return EXIT_TWOFAUTH


async def find(ctx: InstanceContext) -> Found:
    """The live check, then GET /api/v1/user; an InitError when either fails."""
    live = await run_check(ctx, "live")
    if live.kind == Kind.NOT_A_HEALTH_ENDPOINT:  # /live and /up are both the web app's page
        raise InitError(
            f"{ctx.inst.url} is not the base URL of a 2FAuth: {live.path or '/up'} answers its web page "
            "(give the URL you open 2FAuth at, with its sub-directory if it has one)",
            EXIT_USER,
        )
    if live.status == Status.DOWN:
        raise InitError(f"{ctx.inst.url}: {live.message}", _exit_code(live.kind, live.message))
    steps: list[Step] = []
    try:
        fetched = await fetch(ctx, steps, "user", "GET", "/api/v1/user", auth=True)
        failure = classify_status(fetched, "GET /api/v1/user")
        if failure is not None:
            raise failure
    except CheckFailure as exc:
        if exc.kind == Kind.AUTH:
            message = with_release_hint(exc.message, ctx.version) if exc.http_status == 401 else exc.message
            raise InitError(f"the token was refused: {message}", EXIT_USER) from None
        raise InitError(f"2FAuth's API failed: {exc.message}", _exit_code(exc.kind, exc.message)) from None
    user = fetched.json()
    if not isinstance(user, dict) or "email" not in user:
        raise InitError(
            f"GET {ctx.inst.url}/api/v1/user did not answer a 2FAuth user: is this the 2FAuth base URL?",
            EXIT_USER,
        )
    name = str(user.get("name") or user.get("email"))[:100]
    return Found(live.path or "/up", live.version, name, bool(user.get("is_admin")))


def canary_uri(secret: str) -> str:
    label = quote(f"{CANARY_NAME}:{CANARY_ACCOUNT}", safe=":")
    return f"otpauth://totp/{label}?secret={secret}&issuer={quote(CANARY_NAME)}"


async def create_canary(ctx: InstanceContext, secret: str) -> int:
    """Store the canary TOTP account in 2FAuth; its id. 2FAuth answers 201 with the account
    (v5.4.3 seen, v8 in its source), the secret included, which must be ours."""
    steps: list[Step] = []
    body = {"uri": canary_uri(secret)}
    try:
        fetched = await fetch(ctx, steps, "canary", "POST", "/api/v1/twofaccounts", json_body=body, auth=True)
    except CheckFailure as exc:
        raise InitError(f"creating the canary account failed: {exc.message}", EXIT_TWOFAUTH) from None
    if fetched.status != 201:
        detail = api_message(fetched) or f"HTTP {fetched.status}"
        code = EXIT_USER if fetched.status in (401, 403) else EXIT_TWOFAUTH
        raise InitError(f"2FAuth did not create the canary account: {detail}", code)
    account: Any = fetched.json()
    if not isinstance(account, dict) or not isinstance(account.get("id"), int):
        raise InitError("2FAuth answered 201 without the new account's id", EXIT_TWOFAUTH)
    stored = str(account.get("secret", "")).rstrip("=").upper()
    if account.get("otp_type") != "totp" or (stored and stored != secret):
        raise InitError(
            f"2FAuth stored account {account['id']} with other parameters than the canary's; "
            "delete it in 2FAuth and run init again",
            EXIT_TWOFAUTH,
        )
    return int(account["id"])
