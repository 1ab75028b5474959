"""The synthetic TOTP flow: token, API, code generation and (optionally) stored-secret decryption.

1. GET  /api/v1/user                          the token, the OAuth keys and database reads work
2. POST /api/v1/twofaccounts/otp              2FAuth's codes equal ours; its clock is right
3. GET  /api/v1/settings/useEncryption         whether secrets are encrypted (admin tokens; hourly)
4. GET  /api/v1/twofaccounts?ids=N&withOtp=1  the stored canary still gives its code (and so deciphers
                                              with APP_KEY, when 2FAuth encrypts secrets)

Step 3 lists the account with `withOtp`, which never advances a HOTP counter; a HOTP account
is refused before any code is read.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from monitor import otp
from monitor.checks import release
from monitor.checks.http import (
    CheckFailure,
    Fetched,
    InstanceContext,
    api_message,
    classify_status,
    fetch,
    server_time,
)
from monitor.models import Kind, Result, Status, Step

CANARY_ACCOUNT = "2fauth-monitor-canary"
# What 2FAuth accepts for an account (its validation rules); anything else from a server is refused
# before a code is computed: `10 ** digits` with digits = 20,000,000 would hold the event loop.
OTP_TYPES = ("totp", "hotp", "steamtotp")
DIGITS = (5, 10)
MAX_PERIOD = 86400  # seconds; 2FAuth sets no maximum, a day is far past any real account
ALGORITHMS = ("sha1", "sha256", "sha512", "md5")
MAX_GENERATED_AT = 2**34  # unix seconds, the year 2514


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def stored_parameters(account: dict[str, Any], what: str, status: int | None) -> tuple[int, Any, int]:
    """(digits, algorithm, period) of a stored account, each checked against what 2FAuth allows."""
    digits: Any = account.get("digits") if account.get("digits") is not None else 6
    algorithm: Any = account.get("algorithm") if account.get("algorithm") is not None else "sha1"
    period: Any = account.get("period") if account.get("period") is not None else 30
    counter = account.get("counter")
    problems = []
    if not _whole(digits) or not DIGITS[0] <= digits <= DIGITS[1]:
        problems.append(f"digits must be {DIGITS[0]} to {DIGITS[1]}")
    if algorithm not in ALGORITHMS:
        problems.append(f"algorithm must be one of {', '.join(ALGORITHMS)}")
    if not _whole(period) or not 1 <= period <= MAX_PERIOD:
        problems.append(f"period must be 1 to {MAX_PERIOD} seconds")
    if counter is not None and (not _whole(counter) or not 0 <= counter < 2**63):
        problems.append("counter must be a whole number from 0")
    if problems:
        raise CheckFailure(
            Kind.BAD_RESPONSE,
            f"{what}: the account's OTP parameters are out of range ({'; '.join(problems)}); no code computed",
            http_status=status,
        )
    return digits, algorithm, period


ENCRYPTION_SETTING = "/api/v1/settings/useEncryption"
MD5_LIMITATION = (
    "2FAuth cannot compute md5 codes at this time step (a 2FAuth limitation: the md5 truncation "
    "offset is 13 to 15, so it reads past the 16-byte digest and answers 400)"
)
ENCRYPTION_REREAD = 3600.0  # seconds: the setting rarely changes, and each read costs API budget


def token_expiry(token: str) -> float | None:
    """The `exp` claim (unix seconds) of a JWT, unverified; None when the token is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def _is_decipher_error(fetched: Fetched) -> bool:
    text = api_message(fetched).lower() or fetched.text[:2000].lower()
    return "deciph" in text or "decrypt" in text


def _json(fetched: Fetched, what: str) -> Any:
    data = fetched.json()
    if data is None or not isinstance(data, dict | list):
        raise CheckFailure(Kind.BAD_RESPONSE, f"{what}: the body is not JSON", http_status=fetched.status)
    return data


def _api_failure(fetched: Fetched, what: str) -> None:
    failure = classify_status(fetched, what)
    if failure is None:
        return
    if failure.kind == Kind.SERVER_ERROR and fetched.status == 500:
        failure.message += " (the web server answers but the API fails: database or keys)"
    raise failure


def _canary_body(ctx: InstanceContext, secret: str) -> dict[str, Any]:
    cfg = ctx.inst.checks.totp
    if cfg.otp_type == "steamtotp":
        return {"account": CANARY_ACCOUNT, "otp_type": "steamtotp", "secret": secret}
    return {
        "account": CANARY_ACCOUNT,
        "otp_type": "totp",
        "secret": secret,
        "digits": cfg.digits,
        "algorithm": cfg.algorithm,
        "period": cfg.period,
    }


def _matches(
    secret: str, data: dict[str, Any], *, otp_type: str, digits: int, algorithm: str, period: int
) -> tuple[bool, str]:
    """Do `password` and `next_password` equal our codes at `generated_at`? (ok, what differs)"""
    generated_at = data.get("generated_at")
    password = data.get("password")
    if not isinstance(generated_at, int) or isinstance(generated_at, bool) or not isinstance(password, str):
        raise CheckFailure(Kind.BAD_RESPONSE, "the OTP answer lacks password or generated_at")
    if not 0 <= generated_at <= MAX_GENERATED_AT:
        raise CheckFailure(Kind.BAD_RESPONSE, "the OTP answer's generated_at is not a plausible unix time")
    params: dict[str, Any] = {
        "otp_type": otp_type,
        "digits": digits,
        "algorithm": algorithm,
        "period": period,
    }
    step = 30 if otp_type == "steamtotp" else period
    if not otp.codes_equal(password, otp.code_at(secret, generated_at, **params)):
        return False, f"the code at generated_at={generated_at}"
    nxt = data.get("next_password")
    if isinstance(nxt, str):
        # next_password comes from a second time() call in 2FAuth: a step boundary between
        # the two calls makes it two steps ahead (see the 2FAuth reference, section 4).
        candidates = (
            otp.code_at(secret, generated_at + step, **params),
            otp.code_at(secret, generated_at + 2 * step, **params),
        )
        if not any(otp.codes_equal(nxt, c) for c in candidates):
            return False, "next_password"
    return True, ""


async def run_totp(ctx: InstanceContext, steps: list[Step]) -> Result:
    started, wall = time.perf_counter(), time.time()
    cfg = ctx.inst.checks.totp
    assert ctx.token and cfg.canary_secret, "run_totp needs a token and a canary secret"
    secret = cfg.canary_secret.get_secret_value()
    result = Result(instance=ctx.inst.name, check="totp", status=Status.UP, steps=steps, started_at=wall)
    warnings: list[tuple[Kind, str]] = []

    exp = token_expiry(ctx.token)
    if exp is not None:
        result.token_days = round((exp - wall) / 86400, 2)
        if exp <= wall:
            warnings.append(
                (Kind.TOKEN_EXPIRY, f"the token expired {time.strftime('%Y-%m-%d', time.gmtime(exp))}")
            )
        elif exp - wall < ctx.inst.token_expiry_warning:
            warnings.append(
                (
                    Kind.TOKEN_EXPIRY,
                    f"the token expires in {result.token_days:.1f} days "
                    f"({time.strftime('%Y-%m-%d', time.gmtime(exp))}): create a new one in Settings → OAuth",
                )
            )

    user = await fetch(ctx, steps, "user", "GET", "/api/v1/user", auth=True)
    _api_failure(user, "GET /api/v1/user")
    profile = _json(user, "GET /api/v1/user")
    if not isinstance(profile, dict) or "id" not in profile:
        raise CheckFailure(
            Kind.BAD_RESPONSE, "GET /api/v1/user: expected the user's profile", http_status=user.status
        )
    result.cert_days = user.cert_days

    sent = time.time()
    gen = await fetch(
        ctx, steps, "otp", "POST", "/api/v1/twofaccounts/otp", json_body=_canary_body(ctx, secret), auth=True
    )
    received = time.time()
    if gen.status in (400, 422):
        if _md5_short_offset(ctx, secret, gen, sent, received):
            result.http_status, result.path = gen.status, "/api/v1/twofaccounts/otp"
            result.latency_ms = round((time.perf_counter() - started) * 1000, 2)
            result.message = (
                f"{MD5_LIMITATION}; the token and the API work, the codes are compared again at the next step"
            )
            return result
        if _is_decipher_error(gen):
            raise CheckFailure(
                Kind.DECRYPT, f"2FAuth cannot decipher secrets: {api_message(gen)}", http_status=400
            )
        raise CheckFailure(
            Kind.CONFIG,
            f"2FAuth refuses the canary's parameters ({cfg.otp_type}, {cfg.algorithm}, {cfg.digits} digits, "
            f"period {cfg.period}): {api_message(gen) or gen.status}; change checks.totp (this is a "
            "configuration problem, not an outage)",
            status=Status.DEGRADED,
            http_status=gen.status,
        )
    _api_failure(gen, "POST /api/v1/twofaccounts/otp")
    data = _json(gen, "POST /api/v1/twofaccounts/otp")
    if not isinstance(data, dict):
        raise CheckFailure(Kind.BAD_RESPONSE, "POST /api/v1/twofaccounts/otp: expected an object")
    release.note_next_password(ctx, "next_password" in data)
    ok, what = _matches(
        secret, data, otp_type=cfg.otp_type, digits=cfg.digits, algorithm=cfg.algorithm, period=cfg.period
    )
    # skew: the server's generated_at against our clock at the request's midpoint; generated_at
    # is PHP's time(), truncated to whole seconds, so half a second is added back on average
    generated_at = float(data["generated_at"]) + 0.5
    midpoint = (sent + received) / 2
    skew = generated_at - midpoint
    date = server_time(gen.headers)
    if abs(skew) <= 1.5 and date is not None and abs(date - midpoint) > abs(skew) + 1.5:
        skew = date - midpoint
    result.skew_s = round(skew, 1)
    if not ok:
        raise CheckFailure(
            Kind.OTP_MISMATCH,
            f"2FAuth generated a wrong code: {what} differs from the code computed locally for the same secret "
            "and time; users would get codes that do not work",
            http_status=gen.status,
        )
    if abs(skew) > cfg.max_skew:
        warnings.append(
            (
                Kind.CLOCK_SKEW,
                f"the server clock is off by {skew:+.0f}s (more than {cfg.max_skew:g}s): its codes "
                "are valid at the wrong time; fix NTP on the 2FAuth host",
            )
        )

    stored = ""
    if cfg.account_id:
        await _read_encryption(ctx, steps)
        stored = await _check_stored(ctx, steps, cfg.account_id, secret)

    result.http_status = gen.status
    result.path = "/api/v1/twofaccounts/otp"
    result.latency_ms = round((time.perf_counter() - started) * 1000, 2)
    result.notice = encryption_notice(ctx) if cfg.account_id else None
    if warnings:
        result.status, result.kind = Status.DEGRADED, warnings[0][0]
        result.message = "; ".join(m for _, m in warnings)
    else:
        result.message = "2FAuth's codes match the local computation" + (f"; {stored}" if stored else "")
    return result


def _md5_short_offset(ctx: InstanceContext, secret: str, gen: Fetched, sent: float, received: float) -> bool:
    """Did 2FAuth refuse an md5 code because the truncation offset was 13 to 15 at that step?

    Its otphp reads 4 bytes from the offset of a 16-byte md5 digest and fails past the end,
    answering 400 "not a valid base32 encoded secret" for a valid secret. The server may be in
    the step before or after ours, so every step the request could have met is looked at."""
    cfg = ctx.inst.checks.totp
    if cfg.otp_type != "totp" or cfg.algorithm != "md5" or gen.status != 400:
        return False
    if "base32" not in api_message(gen).lower():
        return False
    steps = {int(t) // cfg.period for t in (sent - 1, sent, received, received + 1)}
    return any(
        otp.md5_offset(secret, s * cfg.period, period=cfg.period) in otp.MD5_SHORT_OFFSETS for s in steps
    )


async def _read_encryption(ctx: InstanceContext, steps: list[Step]) -> None:
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


async def _check_stored(ctx: InstanceContext, steps: list[Step], account_id: int, secret: str) -> str:
    """Read the stored canary's code; raise on failure, else say what was shown."""
    path = f"/api/v1/twofaccounts?ids={account_id}&withOtp=1"
    sent = time.time()
    listed = await fetch(ctx, steps, "stored canary", "GET", path, auth=True)
    if _md5_short_offset(ctx, secret, listed, sent, time.time()):
        return f"stored account {account_id}: {MD5_LIMITATION}"
    if listed.status == 400 and _is_decipher_error(listed):
        raise CheckFailure(
            Kind.DECRYPT,
            f"stored secrets cannot be deciphered ({api_message(listed)}): APP_KEY changed? Every account's "
            "codes are broken",
            http_status=400,
        )
    _api_failure(listed, f"GET {path}")
    accounts = _json(listed, f"GET {path}")
    account = (
        next((a for a in accounts if isinstance(a, dict) and a.get("id") == account_id), None)
        if isinstance(accounts, list)
        else None
    )
    if account is None:
        raise CheckFailure(
            Kind.CONFIG,
            f"account {account_id} (checks.totp.account_id) is not among this token's accounts",
            status=Status.DEGRADED,
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
            status=Status.DEGRADED,
        )
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
    digits, algorithm, period = stored_parameters(account, f"GET {path}", listed.status)
    ok, what = _matches(
        secret,
        code,
        otp_type="steamtotp" if otp_type == "steamtotp" else "totp",
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
    release.note_next_password(ctx, "next_password" in code)
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
