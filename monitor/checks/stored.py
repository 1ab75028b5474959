"""The TOTP flow's stored-canary steps: whether 2FAuth encrypts secrets, and whether the stored
canary account still gives the canary secret's codes (so still deciphers with APP_KEY)."""

from __future__ import annotations

import time
from typing import Any

from monitor.checks.codes import (
    MD5_LIMITATION,
    OTP_TYPES,
    Canary,
    api_json,
    is_decipher_error,
    matches,
    md5_short_offset,
    raise_api_failure,
    stored_parameters,
)
from monitor.checks.context import InstanceContext
from monitor.checks.http import CheckFailure, Fetched, api_message, fetch
from monitor.checks.release import note_next_password
from monitor.models import Kind, Step

ENCRYPTION_SETTING = "/api/v1/settings/useEncryption"
ENCRYPTION_REREAD = 3600.0  # seconds: the setting rarely changes, and each read costs API budget


async def read_encryption(ctx: InstanceContext, steps: list[Step]) -> None:
    """Learn whether 2FAuth encrypts secrets (admin setting useEncryption), at most hourly."""
    if time.time() < ctx.encryption_read_at + ENCRYPTION_REREAD:
        return
    try:
        fetched = await fetch(ctx, steps, "encryption setting", "GET", ENCRYPTION_SETTING, auth=True)
    except CheckFailure:
        return  # the stored-canary step below reports the connection
    data = fetched.json()
    if fetched.status == 200 and isinstance(data, dict) and isinstance(data.get("value"), bool):
        ctx.encryption, ctx.encryption_note = data["value"], ""
    elif fetched.status == 403:
        ctx.encryption = None
        ctx.encryption_note = "the token's user is not a 2FAuth administrator, so it cannot read the setting"
    elif fetched.status == 429 or fetched.status >= 500:
        return  # try again next run
    else:
        ctx.encryption = None
        ctx.encryption_note = f"GET {ENCRYPTION_SETTING} answered {fetched.status}"
    ctx.encryption_read_at = time.time()


def encryption_notice(ctx: InstanceContext) -> str | None:
    """What the stored-account canary can and cannot see, for the instance page."""
    if ctx.encryption:
        return None
    if ctx.encryption is False:
        return (
            "The APP_KEY canary is inactive: 2FAuth stores secrets in clear, so a changed APP_KEY cannot "
            'be seen. Turn it on in 2FAuth: Settings → Security → "Protect sensitive data".'
        )
    return (
        "Whether 2FAuth encrypts secrets is not known"
        + (f" ({ctx.encryption_note})" if ctx.encryption_note else "")
        + ': if "Protect sensitive data" (Settings → Security) is off, a changed APP_KEY cannot be seen.'
    )


async def check_stored(
    ctx: InstanceContext, steps: list[Step], canary: Canary, account_id: int, secret: str
) -> str:
    """Read the stored canary's code; raise on failure, else say what was shown."""
    path = f"/api/v1/twofaccounts?ids={account_id}&withOtp=1"
    sent = time.time()
    listed = await fetch(ctx, steps, "stored canary", "GET", path, auth=True)
    if md5_short_offset(canary, secret, listed, sent, time.time()):
        return f"stored account {account_id}: {MD5_LIMITATION}"
    if listed.status == 400 and is_decipher_error(listed):
        raise CheckFailure(
            Kind.DECRYPT,
            f"stored secrets cannot be deciphered ({api_message(listed)}): APP_KEY changed? Every account's "
            "codes are broken",
            http_status=400,
        )
    raise_api_failure(listed, f"GET {path}")
    account = _stored_account(listed, path, account_id)
    code = _stored_code(listed, path, account, account_id)
    digits, algorithm, period = stored_parameters(account, f"GET {path}", listed.status)
    ok, what = matches(
        secret,
        code,
        otp_type="steamtotp" if account.get("otp_type") == "steamtotp" else "totp",
        digits=digits,
        algorithm=algorithm,
        period=period,
    )
    if not ok:
        raise CheckFailure(
            Kind.OTP_MISMATCH,
            f"stored account {account_id} gives codes that differ from the canary secret's ({what}): its secret "
            "no longer deciphers to the canary secret, or canary_secret differs from the stored one",
            http_status=listed.status,
        )
    note_next_password(ctx, "next_password" in code)
    return _stored_message(ctx, account_id)


def _stored_account(listed: Fetched, path: str, account_id: int) -> dict[str, Any]:
    """The canary account in the listing, a TOTP or Steam one; raise otherwise."""
    accounts = api_json(listed, f"GET {path}")
    account = (
        next((a for a in accounts if isinstance(a, dict) and a.get("id") == account_id), None)
        if isinstance(accounts, list)
        else None
    )
    if account is None:
        raise CheckFailure(
            Kind.CONFIG,
            f"account {account_id} (checks.totp.account_id) is not among this token's accounts",
            http_status=listed.status,
        )
    otp_type = account.get("otp_type")
    if otp_type not in OTP_TYPES:
        raise CheckFailure(
            Kind.BAD_RESPONSE,
            f"GET {path}: the account's otp_type is not one of {', '.join(OTP_TYPES)}",
            http_status=listed.status,
        )
    if otp_type == "hotp":
        raise CheckFailure(
            Kind.CONFIG,
            f"account {account_id} is HOTP: the monitor never reads HOTP accounts (each read advances the "
            "counter); use a TOTP canary",
        )
    return account


def _stored_code(listed: Fetched, path: str, account: dict[str, Any], account_id: int) -> dict[str, Any]:
    """The account's `otp` (its code now); a missing one means its secret does not decipher."""
    code = account.get("otp")
    if not isinstance(code, dict):
        if str(account.get("secret", "")).startswith("__"):
            raise CheckFailure(Kind.DECRYPT, f"stored account {account_id}'s secret cannot be deciphered")
        raise CheckFailure(
            Kind.BAD_RESPONSE, f"GET {path}: the account has no otp", http_status=listed.status
        )
    if not isinstance(code.get("password"), str) or not code.get("password"):
        raise CheckFailure(
            Kind.DECRYPT, f"stored account {account_id} gives no code: its secret does not decipher"
        )
    return code


def _stored_message(ctx: InstanceContext, account_id: int) -> str:
    if ctx.encryption:
        return f"stored account {account_id} deciphers with APP_KEY"
    if ctx.encryption is False:
        return (
            f"stored account {account_id} gives the right code, but secrets are stored in clear, so the "
            'APP_KEY canary is inactive (turn on Settings → Security → "Protect sensitive data")'
        )
    return (
        f"stored account {account_id} gives the right code (whether its secret is encrypted is not known: "
        f"{ctx.encryption_note or 'the encryption setting could not be read'})"
    )
