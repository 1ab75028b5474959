"""The synthetic TOTP flow: token, API, code generation and (optionally) stored-secret decryption.

1. GET  /api/v1/user                          the token, the OAuth keys and database reads work
2. POST /api/v1/twofaccounts/otp              2FAuth's codes equal ours; its clock is right
3. GET  /api/v1/settings/useEncryption         whether secrets are encrypted (admin tokens; hourly)
4. GET  /api/v1/twofaccounts?ids=N&withOtp=1  the stored canary still gives its code (and so deciphers
                                              with APP_KEY, when 2FAuth encrypts secrets)

Step 3 lists the account with `withOtp`, which never advances a HOTP counter; a HOTP account
is refused before any code is read. Steps 3 and 4 live in stored.py, the code comparison in codes.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from monitor.checks.codes import (
    MD5_LIMITATION,
    api_json,
    is_decipher_error,
    matches,
    md5_short_offset,
    raise_api_failure,
    token_expiry,
)
from monitor.checks.context import InstanceContext
from monitor.checks.http import CheckFailure, Fetched, api_message, fetch, server_time
from monitor.checks.release import note_next_password
from monitor.checks.spec import CheckSettings, CheckSpec, always
from monitor.checks.stored import check_stored, encryption_notice, read_encryption
from monitor.fields import Duration
from monitor.models import Kind, Result, Status, Step, default_status
from monitor.otp import SecretError, decode_secret

CANARY_ACCOUNT = "2fauth-monitor-canary"
OTP_PATH = "/api/v1/twofaccounts/otp"
Warnings = list[tuple[Kind, str]]


class TotpCheck(CheckSettings):
    canary_secret: SecretStr | None = None
    canary_secret_file: Path | None = None
    otp_type: Literal["totp", "steamtotp"] = "totp"
    algorithm: Literal["sha1", "sha256", "sha512", "md5"] = "sha1"
    digits: int = Field(6, ge=5, le=10)
    period: int = Field(30, ge=1)
    account_id: int | None = Field(None, ge=1)
    max_skew: Duration = 15.0
    interval: Duration | None = None  # defaults to the instance's interval
    secret_files: ClassVar[dict[str, str]] = {"canary_secret_file": "canary_secret"}
    default_slow_after: ClassVar[float] = 3.0  # two or three API requests, each a PHP request

    @field_validator("canary_secret")
    @classmethod
    def _base32(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                decode_secret(value.get_secret_value())
            except SecretError as exc:
                raise ValueError(f"{exc} (the value is not shown)") from None
        return value

    def runs(self, has_token: bool) -> bool:
        return bool(self.enabled and has_token and self.canary_secret)

    def check_interval(self) -> float | None:
        return self.interval

    def api_requests_per_run(self) -> float:
        return 2 + (1 if self.account_id else 0)

    def advice(self, has_token: bool) -> list[tuple[tuple[str | int, ...], str]]:
        out: list[tuple[tuple[str | int, ...], str]] = []
        if self.enabled and not self.runs(has_token):
            missing = [k for k, v in (("token", has_token), ("canary_secret", self.canary_secret)) if not v]
            verb = "is" if len(missing) == 1 else "are"
            out.append(((), f"the TOTP flow is off until {' and '.join(missing)} {verb} set"))
        if self.enabled and self.otp_type == "totp" and self.algorithm == "md5":
            out.append(
                (
                    ("checks", "totp", "algorithm"),
                    "md5 accounts in 2FAuth fail about 3 time steps in 16 (2FAuth cannot compute an md5 code "
                    "when its truncation offset is 13 to 15 and answers 400); the monitor reports those runs "
                    "as up, saying so",
                )
            )
        return out


def _canary_body(cfg: TotpCheck, secret: str) -> dict[str, Any]:
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


def _token_warnings(ctx: InstanceContext, token: str, wall: float, result: Result) -> Warnings:
    """The token's expiry, read from the token itself when it is a JWT."""
    exp = token_expiry(token)
    if exp is None:
        return []
    result.token_days = round((exp - wall) / 86400, 2)
    day = time.strftime("%Y-%m-%d", time.gmtime(exp))
    if exp <= wall:
        return [(Kind.TOKEN_EXPIRY, f"the token expired {day}")]
    if exp - wall < ctx.inst.token_expiry_warning:
        return [
            (
                Kind.TOKEN_EXPIRY,
                f"the token expires in {result.token_days:.1f} days ({day}): create a new one in Settings → OAuth",
            )
        ]
    return []


async def _read_user(ctx: InstanceContext, steps: list[Step]) -> Fetched:
    """Step 1: the token, the OAuth keys and database reads work."""
    user = await fetch(ctx, steps, "user", "GET", "/api/v1/user", auth=True)
    raise_api_failure(user, "GET /api/v1/user")
    profile = api_json(user, "GET /api/v1/user")
    if not isinstance(profile, dict) or "id" not in profile:
        raise CheckFailure(
            Kind.BAD_RESPONSE, "GET /api/v1/user: expected the user's profile", http_status=user.status
        )
    return user


def _refused(cfg: TotpCheck, gen: Fetched) -> CheckFailure:
    """Why 2FAuth refused to generate the canary's code (400 or 422)."""
    if is_decipher_error(gen):
        return CheckFailure(
            Kind.DECRYPT, f"2FAuth cannot decipher secrets: {api_message(gen)}", http_status=400
        )
    return CheckFailure(
        Kind.CONFIG,
        f"2FAuth refuses the canary's parameters ({cfg.otp_type}, {cfg.algorithm}, {cfg.digits} digits, "
        f"period {cfg.period}): {api_message(gen) or gen.status}; change checks.totp (this is a "
        "configuration problem, not an outage)",
        http_status=gen.status,
    )


def _compare(
    ctx: InstanceContext,
    cfg: TotpCheck,
    secret: str,
    gen: Fetched,
    times: tuple[float, float],
    result: Result,
) -> Warnings:
    """Step 2's verdict: 2FAuth's codes equal ours (else raise), and how far its clock is off."""
    raise_api_failure(gen, f"POST {OTP_PATH}")
    data = api_json(gen, f"POST {OTP_PATH}")
    if not isinstance(data, dict):
        raise CheckFailure(Kind.BAD_RESPONSE, f"POST {OTP_PATH}: expected an object")
    note_next_password(ctx, "next_password" in data)
    ok, what = matches(
        secret, data, otp_type=cfg.otp_type, digits=cfg.digits, algorithm=cfg.algorithm, period=cfg.period
    )
    # skew: the server's generated_at against our clock at the request's midpoint; generated_at
    # is PHP's time(), truncated to whole seconds, so half a second is added back on average
    midpoint = (times[0] + times[1]) / 2
    skew = float(data["generated_at"]) + 0.5 - midpoint
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
    if abs(skew) <= cfg.max_skew:
        return []
    return [
        (
            Kind.CLOCK_SKEW,
            f"the server clock is off by {skew:+.0f}s (more than {cfg.max_skew:g}s): its codes "
            "are valid at the wrong time; fix NTP on the 2FAuth host",
        )
    ]


def _finish(result: Result, started: float, gen: Fetched, warnings: Warnings, message: str) -> Result:
    result.http_status, result.path = gen.status, OTP_PATH
    result.latency_ms = round((time.perf_counter() - started) * 1000, 2)
    if warnings:
        result.status, result.kind = default_status(warnings[0][0]), warnings[0][0]
        result.message = "; ".join(m for _, m in warnings)
    else:
        result.message = message
    return result


async def run_totp(ctx: InstanceContext, cfg: TotpCheck, steps: list[Step]) -> Result:
    started, wall = time.perf_counter(), time.time()
    assert ctx.token and cfg.canary_secret, "run_totp needs a token and a canary secret"
    secret = cfg.canary_secret.get_secret_value()
    result = Result(instance=ctx.inst.name, check="totp", status=Status.UP, steps=steps, started_at=wall)
    warnings = _token_warnings(ctx, ctx.token, wall, result)
    result.cert_days = (await _read_user(ctx, steps)).cert_days

    sent = time.time()
    gen = await fetch(ctx, steps, "otp", "POST", OTP_PATH, json_body=_canary_body(cfg, secret), auth=True)
    received = time.time()
    if gen.status in (400, 422):
        if not md5_short_offset(cfg, secret, gen, sent, received):
            raise _refused(cfg, gen)
        message = (
            f"{MD5_LIMITATION}; the token and the API work, the codes are compared again at the next step"
        )
        return _finish(result, started, gen, [], message)
    warnings += _compare(ctx, cfg, secret, gen, (sent, received), result)

    stored = ""
    if cfg.account_id:
        await read_encryption(ctx, steps)
        stored = await check_stored(ctx, steps, cfg, cfg.account_id, secret)
        result.notice = encryption_notice(ctx)
    message = "2FAuth's codes match the local computation" + (f"; {stored}" if stored else "")
    return _finish(result, started, gen, warnings, message)


SPEC = CheckSpec(
    name="totp",
    label="TOTP codes",
    description="generates the right one-time codes",
    settings=TotpCheck,
    runner=run_totp,
    uses_api=always,
    dash="2 3",
    demo_latency_ms=165.0,
)
