"""What the TOTP flow needs to compare 2FAuth's codes with ours: the bounds 2FAuth allows, the code
comparison, the token's expiry, 2FAuth's md5 limitation, and reading its API answers."""

from __future__ import annotations

import base64
import json
from typing import Any, Protocol

from monitor import otp
from monitor.checks.http import CheckFailure, Fetched, api_message, classify_status
from monitor.models import Kind

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


MD5_LIMITATION = (
    "2FAuth cannot compute md5 codes at this time step (a 2FAuth limitation: the md5 truncation "
    "offset is 13 to 15, so it reads past the 16-byte digest and answers 400)"
)


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


def is_decipher_error(fetched: Fetched) -> bool:
    text = api_message(fetched).lower() or fetched.text[:2000].lower()
    return "deciph" in text or "decrypt" in text


def api_json(fetched: Fetched, what: str) -> Any:
    data = fetched.json()
    if data is None or not isinstance(data, dict | list):
        raise CheckFailure(Kind.BAD_RESPONSE, f"{what}: the body is not JSON", http_status=fetched.status)
    return data


def raise_api_failure(fetched: Fetched, what: str) -> None:
    failure = classify_status(fetched, what)
    if failure is None:
        return
    if failure.kind == Kind.SERVER_ERROR and fetched.status == 500:
        failure.message += " (the web server answers but the API fails: database or keys)"
    raise failure


def matches(
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


class Canary(Protocol):
    """The canary's code parameters (checks.totp)."""

    @property
    def otp_type(self) -> str: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def digits(self) -> int: ...
    @property
    def period(self) -> int: ...


def md5_short_offset(canary: Canary, secret: str, gen: Fetched, sent: float, received: float) -> bool:
    """Did 2FAuth refuse an md5 code because the truncation offset was 13 to 15 at that step?

    Its otphp reads 4 bytes from the offset of a 16-byte md5 digest and fails past the end,
    answering 400 "not a valid base32 encoded secret" for a valid secret. The server may be in
    the step before or after ours, so every step the request could have met is looked at."""
    period = canary.period
    if canary.otp_type != "totp" or canary.algorithm != "md5" or gen.status != 400:
        return False
    if "base32" not in api_message(gen).lower():
        return False
    steps = {int(t) // period for t in (sent - 1, sent, received, received + 1)}
    return any(otp.md5_offset(secret, s * period, period=period) in otp.MD5_SHORT_OFFSETS for s in steps)
