"""The browser check: the 2FAuth web app as its users see it, in headless Chromium.

load       GET /, the app renders its sign-in form (its scripts and stylesheets load, no JS error)
sign in    the form is filled and sent as a person would; 2FAuth lets the monitor's user in
accounts   the accounts list shows
code       with checks.totp.account_id and canary_secret: the canary account opened, the code on
           screen equal to the canary's code now (codes.py's comparison, step boundaries included)
sign out   the user menu's Sign out

Chromium runs in a child process (browser_child.py, through browser_process.py), one at a time
across all instances; failures leave a screenshot beside the history (browser_files.py).
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import time
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, SecretStr, model_validator

from monitor.checks.browser_files import keep, screenshot_name
from monitor.checks.browser_process import Child, ChildOutcome
from monitor.checks.codes import matches, stored_parameters
from monitor.checks.context import InstanceContext
from monitor.checks.http import CheckFailure
from monitor.checks.spec import CheckSettings, CheckSpec, always
from monitor.fields import Duration, format_duration
from monitor.models import Kind, Result, Status, Step
from monitor.secrets import redact

DEFAULT_CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
EXTRA = "pip install '2fauth-monitor[browser]'"
JS_HEAP_MB = 256
OFFSET_SEARCH = 40  # time steps each way searched to say how far off a wrong code is


class BrowserCheck(CheckSettings):
    email: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    interval: Duration = 600.0
    timeout: Duration = 60.0
    chromium: Path | None = None  # default: /usr/bin/chromium, else the first Chromium on PATH
    max_memory_mb: int = Field(1024, ge=300)
    secret_files: ClassVar[dict[str, str]] = {"password_file": "password"}
    default_slow_after: ClassVar[float] = 15.0  # a page load, a sign-in, two API calls and a sign-out

    @model_validator(mode="after")
    def _times(self) -> BrowserCheck:
        if self.timeout <= 0:
            raise ValueError("timeout must be more than 0s")
        if self.timeout >= self.interval:
            raise ValueError(
                f"timeout ({format_duration(self.timeout)}) must be shorter than interval "
                f"({format_duration(self.interval)})"
            )
        return self

    def runs(self, has_token: bool) -> bool:
        return bool(self.enabled and self.email and self.password)

    def check_interval(self) -> float | None:
        return self.interval

    def check_timeout(self) -> float | None:
        # the journey has `timeout`; waiting for another instance's browser comes on top, within the interval
        return self.interval

    def api_requests_per_run(self) -> float:
        return 5  # the web app's own API calls: user, accounts, groups, the account, its code

    def chromium_path(self) -> Path | None:
        if self.chromium is not None:
            return self.chromium if self.chromium.is_file() else None
        if DEFAULT_CHROMIUM.is_file():
            return DEFAULT_CHROMIUM
        found = next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
        return Path(found) if found else None

    def advice(self, has_token: bool) -> list[tuple[tuple[str | int, ...], str]]:
        if not self.enabled:
            return []
        if not self.runs(has_token):
            if self.email or self.password:
                missing = "password (or password_file)" if self.email else "email"
                return [(("checks", "browser"), f"the browser check is off until {missing} is set")]
            return []
        out: list[tuple[tuple[str | int, ...], str]] = []
        if importlib.util.find_spec("playwright") is None:
            out.append((("checks", "browser"), f"the browser check needs Playwright: {EXTRA}"))
        if self.chromium_path() is None:
            where = str(self.chromium) if self.chromium else f"{DEFAULT_CHROMIUM} nor on PATH"
            out.append(
                (("checks", "browser", "chromium"), f"no Chromium at {where}: apt-get install chromium")
            )
        return out


# --- one browser at a time, across all instances ------------------------------------------------

_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def browser_slot() -> asyncio.Semaphore:
    """The one browser this event loop may run at a time."""
    loop = asyncio.get_running_loop()
    slot = _slots.get(loop)
    if slot is None:
        slot = _slots[loop] = asyncio.Semaphore(1)
    return slot


# --- the run ------------------------------------------------------------------------------------


def _job(ctx: InstanceContext, cfg: BrowserCheck, chromium: Path, screenshot: Path | None) -> dict[str, Any]:
    totp = ctx.inst.check_settings("totp")
    canary = bool(getattr(totp, "account_id", None) and getattr(totp, "canary_secret", None))
    assert cfg.password is not None
    return {
        "url": ctx.inst.url,
        "email": cfg.email,
        "password": cfg.password.get_secret_value(),
        "chromium": str(chromium),
        "budget": cfg.timeout,
        "account_id": totp.account_id if canary else None,
        "screenshot": str(screenshot) if screenshot else None,
        "js_heap_mb": JS_HEAP_MB,
    }


def _ready(cfg: BrowserCheck) -> Path:
    """The Chromium to run; a missing piece is a configuration problem, said in one line."""
    if importlib.util.find_spec("playwright") is None:
        raise CheckFailure(
            Kind.CONFIG, f"the browser check needs Playwright, which is not installed: {EXTRA}"
        )
    chromium = cfg.chromium_path()
    if chromium is None:
        where = cfg.chromium or "/usr/bin/chromium or on PATH"
        raise CheckFailure(Kind.CONFIG, f"no Chromium at {where} (checks.browser.chromium): install chromium")
    return chromium


async def run_browser(ctx: InstanceContext, cfg: BrowserCheck, steps: list[Step]) -> Result:
    chromium = _ready(cfg)
    async with browser_slot():  # waiting for another instance's browser is not the journey's time
        started, wall = time.perf_counter(), time.time()
        folder, temp = _screenshot_folder(ctx), None
        if folder is not None:
            temp = folder / f".{ctx.inst.name}-{time.time_ns()}.part.png"
        try:
            outcome = await Child(_job(ctx, cfg, chromium, temp), cfg.timeout, cfg.max_memory_mb).run()
            result = _result(ctx, cfg, outcome, steps, wall)
            result.latency_ms = _journey_ms(outcome, started)
            if folder is not None and temp is not None and result.status != Status.UP:
                keep(folder, temp, screenshot_name(ctx.inst.name, wall))
        finally:
            if temp is not None:
                temp.unlink(missing_ok=True)
        return result


def _screenshot_folder(ctx: InstanceContext) -> Path | None:
    if ctx.artifacts is None:
        return None
    try:
        ctx.artifacts.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # no screenshot; the journey's verdict does not depend on it
    return ctx.artifacts


def _journey_ms(outcome: ChildOutcome, started: float) -> float:
    final = outcome.final or {}
    journey = final.get("journey_ms")
    if isinstance(journey, int | float) and journey > 0:
        return round(float(journey), 2)
    return round((time.perf_counter() - started) * 1000, 2)


def _steps(outcome: ChildOutcome) -> list[Step]:
    out = []
    for s in outcome.steps[:10]:
        status = s.get("status")
        out.append(
            Step(
                name=str(s.get("step"))[:40],
                method=str(s.get("method") or "GET")[:10],
                path=redact(str(s.get("path") or "/"))[:200],
                status=status if isinstance(status, int) and not isinstance(status, bool) else None,
                duration_ms=float(s.get("ms") or 0.0),
                outcome=redact(str(s.get("outcome") or "ok"))[:200],
            )
        )
    return out


def _result(
    ctx: InstanceContext, cfg: BrowserCheck, outcome: ChildOutcome, steps: list[Step], wall: float
) -> Result:
    steps.extend(_steps(outcome))
    result = Result(ctx.inst.name, "browser", Status.UP, started_at=wall)
    try:
        result.message = _verdict(ctx, cfg, outcome)
    except CheckFailure as failure:
        result.status, result.kind, result.message = failure.status, failure.kind, failure.message
        result.http_status = failure.http_status
        if failure.kind == Kind.OTP_MISMATCH:  # the code step itself went well; what it showed did not
            steps[:] = [replace(s, outcome="otp_mismatch") if s.name == "code" else s for s in steps]
    return result


def _verdict(ctx: InstanceContext, cfg: BrowserCheck, outcome: ChildOutcome) -> str:
    """What the journey showed, in one line; raise CheckFailure when it is not up."""
    running = outcome.steps[-1]["step"] if outcome.steps else "load"
    if outcome.killed_for == "memory":
        raise CheckFailure(
            Kind.FRONTEND,
            f"the browser used more than {cfg.max_memory_mb} MB (checks.browser.max_memory_mb) and was "
            f"stopped after step '{running}': the page uses too much memory, or raise the bound",
        )
    if outcome.killed_for == "timeout":
        raise CheckFailure(Kind.TIMEOUT, f"the journey did not finish within {cfg.timeout:g}s")
    final = outcome.final
    if final is None:
        last = redact(outcome.stderr.strip().splitlines()[-1] if outcome.stderr.strip() else "")[:200]
        raise CheckFailure(
            Kind.BAD_RESPONSE,
            f"the browser process ended without an outcome (exit {outcome.returncode})"
            + (f": {last}" if last else ""),
        )
    problems = [redact(str(p))[:200] for p in final.get("problems") or []][:10]
    failure = final.get("failure")
    if isinstance(failure, dict):
        kind = _kind(failure.get("kind"))
        message = redact(str(failure.get("message") or kind))[:400]
        if problems and kind != Kind.FRONTEND:
            message += f"; the page also showed: {'; '.join(problems)}"
        status = failure.get("status")
        raise CheckFailure(kind, message, http_status=status if isinstance(status, int) else None)
    code = final.get("code")
    said = ""
    if isinstance(code, dict):
        said = _compare_code(ctx, code)
    if problems:
        raise CheckFailure(Kind.FRONTEND, f"the journey finished, but the page failed: {'; '.join(problems)}")
    return "signed in, listed the accounts" + (f", {said}" if said else "") + " and signed out"


def _kind(value: Any) -> Kind:
    try:
        return Kind(str(value))
    except ValueError:
        return Kind.FRONTEND


def _compare_code(ctx: InstanceContext, code: dict[str, Any]) -> str:
    """The code on screen against the canary's code at the time it was shown; raise when it differs."""
    totp = ctx.inst.check_settings("totp")
    secret = totp.canary_secret.get_secret_value()
    account: dict[str, Any] = code["account"] if isinstance(code.get("account"), dict) else {}
    account_id = account.get("id")
    digits, algorithm, period = stored_parameters(account, f"account {account_id}", None)
    otp_type = "steamtotp" if account.get("otp_type") == "steamtotp" else "totp"
    step = 30 if otp_type == "steamtotp" else period
    shown = "".join(str(code.get("shown") or "").split())
    if not shown or set(shown) <= {"●", "•", "*"}:
        raise CheckFailure(
            Kind.CONFIG,
            f'account {account_id} shows no code on screen ("Show OTP as dot" in the user\'s options?)',
        )
    before, after = float(code.get("before") or 0), float(code.get("after") or 0)
    slack = float(getattr(totp, "max_skew", 15.0))  # as much clock error as the TOTP flow lets pass
    params = {"otp_type": otp_type, "digits": digits, "algorithm": algorithm, "period": period}

    def shown_at(offset: int, slack: float) -> bool:
        first, last = int((before - slack) // step), int((after + slack) // step)
        return any(
            matches(secret, {"password": shown, "generated_at": (n + offset) * step}, **params)[0]
            for n in range(first, last + 1)
        )

    if shown_at(0, slack):
        return f"the code of account {account_id} on screen is right"
    off = next((o * s for o in range(1, OFFSET_SEARCH + 1) for s in (1, -1) if shown_at(o * s, 0)), None)
    where = "it is no code of the canary secret near now"
    if off:
        where = f"it is the code of {abs(off) * step:g}s {'later' if off > 0 else 'earlier'}"
    generated = code.get("generated_at")
    if isinstance(generated, int) and not isinstance(generated, bool) and before:
        where += f"; 2FAuth's clock is {generated + 0.5 - (before + after) / 2:+.0f}s from ours"
    raise CheckFailure(
        Kind.OTP_MISMATCH,
        f"the code 2FAuth's web app shows for account {account_id} is wrong now ({where}); users would "
        "type codes that do not work",
    )


SPEC = CheckSpec(
    name="browser",
    label="Web app",
    description="signs in and shows the right code in a browser",
    settings=BrowserCheck,
    runner=run_browser,
    uses_api=always,
    dash="6 3",
    demo_latency_ms=2400.0,
)
