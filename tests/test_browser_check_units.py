"""The browser check's parts without a browser: its settings and what `validate` says of them, the
comparison of the code on screen, the screenshots' names and bounds, and the browser extra's lock."""

from __future__ import annotations

import time
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from packaging.requirements import Requirement

from monitor import config, otp
from monitor.checks import artifacts_dir, browser_files
from monitor.checks.browser import _compare_code, _verdict
from monitor.checks.browser_process import ChildOutcome
from monitor.checks.http import CheckFailure
from monitor.models import Kind

ROOT = Path(__file__).resolve().parent.parent
SECRET = "JBSWY3DPEHPK3PXP"


def load(browser: dict[str, Any], **extra: Any) -> config.Settings:
    inst = {"name": "home", "url": "https://2fauth.example.com", "checks": {"browser": browser}, **extra}
    return config.from_mapping({"instances": [inst]}, env={})


def problems(browser: dict[str, Any]) -> list[str]:
    with pytest.raises(config.ConfigError) as caught:
        load(browser)
    return caught.value.problems


# --- settings ------------------------------------------------------------------------------------


def test_the_browser_runs_every_10_minutes_once_email_and_password_are_set(tmp_path):
    assert "browser" not in load({}).instances[0].enabled_checks()
    secret = tmp_path / "pw"
    secret.write_text("from-a-file-pw\n")
    inst = load({"email": "m@example.com", "password_file": str(secret)}).instances[0]
    assert inst.enabled_checks()[-1] == "browser"
    cfg = inst.check_settings("browser")
    assert cfg.password.get_secret_value() == "from-a-file-pw"
    assert (inst.check_interval("browser"), cfg.timeout, cfg.slow_threshold()) == (600.0, 60.0, 15.0)
    assert cfg.check_timeout() == 600.0  # the journey's 60 s plus any wait for another browser


def test_bad_browser_settings_are_one_line_each():
    assert problems({"email": "m@example.com", "password": "x-pw-1", "timeout": "10m"}) == [
        "instances[0].checks.browser: timeout (10m) must be shorter than interval (10m)"
    ]
    assert problems({"email": "m@example.com", "password": "pw-1234", "pasword": "x"}) == [
        "instances[0].checks.browser.pasword: unknown key (did you mean password?)"
    ]
    assert problems({"email": "m@example.com", "password": "pw-1234", "password_file": "/x"}) == [
        "instances[0]: checks.browser: set password or password_file, not both"
    ]


def test_validate_warns_when_chromium_or_a_password_is_missing():
    settings = load({"email": "m@example.com", "password": "pw-1234", "chromium": "/nonexistent/chromium"})
    warned = config.warnings(settings)
    assert (
        "instances[0].checks.browser.chromium: no Chromium at /nonexistent/chromium: apt-get install chromium"
        in warned
    )
    assert not any("Playwright" in w for w in warned)  # the test extra has it
    half = config.warnings(load({"email": "m@example.com"}))
    assert (
        "instances[0].checks.browser: the browser check is off until password (or password_file) is set"
        in half
    )


def test_validate_warns_when_playwright_is_missing(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "playwright" else real(name, *a)
    )
    warned = config.warnings(load({"email": "m@example.com", "password": "pw-1234"}))
    assert (
        "instances[0].checks.browser: the browser check needs Playwright: pip install '2fauth-monitor[browser]'"
        in warned
    )


# --- the code on screen --------------------------------------------------------------------------


def ctx_with_canary(max_skew: float = 15.0) -> Any:
    totp = load({}, checks={"totp": {"canary_secret": SECRET, "account_id": 7, "max_skew": max_skew}})
    return SimpleNamespace(inst=totp.instances[0])


def shown(at: float, **account: Any) -> dict[str, Any]:
    code = otp.code_at(SECRET, int(at))
    return {
        "shown": f"{code[:3]} {code[3:]}",  # as 2FAuth formats it
        "before": at,
        "after": at + 0.4,
        "account": {"id": 7, "otp_type": "totp", "digits": 6, "algorithm": "sha1", "period": 30, **account},
        "generated_at": int(at),
    }


def test_the_code_on_screen_is_right_across_a_step_boundary():
    boundary = (int(time.time()) // 30 + 1) * 30
    code = shown(boundary - 1)  # generated in the last second of a step, read in the next
    code["before"], code["after"] = boundary - 1.2, boundary + 0.8
    assert _compare_code(ctx_with_canary(max_skew=0), code) == "the code of account 7 on screen is right"


def test_a_code_from_a_clock_two_minutes_ahead_is_otp_mismatch_saying_how_far():
    now = time.time()
    code = shown(now + 120)
    code["before"], code["after"] = now, now + 0.4
    with pytest.raises(CheckFailure) as caught:
        _compare_code(ctx_with_canary(), code)
    assert caught.value.kind == Kind.OTP_MISMATCH
    assert "it is the code of 120s later; 2FAuth's clock is +120s from ours" in caught.value.message


def test_codes_hidden_as_dots_are_a_configuration_problem():
    code = shown(time.time())
    code["shown"] = "●●● ●●●"
    with pytest.raises(CheckFailure) as caught:
        _compare_code(ctx_with_canary(), code)
    assert caught.value.kind == Kind.CONFIG and "Show OTP as dot" in caught.value.message


def test_page_problems_after_a_finished_journey_are_frontend():
    cfg = load({"email": "m@example.com", "password": "pw-1234"}).instances[0].check_settings("browser")
    final = {"done": True, "problems": ["JavaScript error: boom"], "journey_ms": 900}
    with pytest.raises(CheckFailure) as caught:
        _verdict(ctx_with_canary(), cfg, ChildOutcome(final=final))
    assert caught.value.kind == Kind.FRONTEND
    assert caught.value.message == "the journey finished, but the page failed: JavaScript error: boom"
    with pytest.raises(CheckFailure) as died:
        _verdict(ctx_with_canary(), cfg, ChildOutcome(stderr="Traceback...\nImportError: x", returncode=1))
    assert died.value.message == "the browser process ended without an outcome (exit 1): ImportError: x"


# --- screenshots ---------------------------------------------------------------------------------


def test_screenshots_live_beside_the_history_named_by_instance_and_time_only():
    assert artifacts_dir("data/monitor.db") == Path("data/monitor-screenshots")
    assert artifacts_dir(":memory:") is None
    name = browser_files.screenshot_name("home", 1796280368.4221)
    assert name == "home-20261203T064608422Z.png"
    assert browser_files.NAME.match(name)["instance"] == "home"


def test_screenshots_are_bounded_oldest_removed(tmp_path):
    for i in range(8):
        temp = tmp_path / f".part{i}.png"
        temp.write_bytes(b"\x89PNG" + b"x" * 1000)
        browser_files.keep(tmp_path, temp, browser_files.screenshot_name("home", 1_800_000_000 + i))
    browser_files.prune(tmp_path, max_files=5, max_bytes=10_000)
    kept = [n for n, _ in browser_files.listed(tmp_path, "home")]
    assert kept == [browser_files.screenshot_name("home", 1_800_000_000 + i) for i in (7, 6, 5, 4, 3)]
    browser_files.prune(tmp_path, max_files=5, max_bytes=2_500)
    assert len(browser_files.listed(tmp_path, "home")) == 2
    assert not list(tmp_path.glob(".part*"))


def test_only_an_instances_own_screenshots_are_served(tmp_path):
    name = browser_files.screenshot_name("home", 1_800_000_000)
    (tmp_path / name).write_bytes(b"\x89PNG")
    (tmp_path / "secret.txt").write_text("x")
    assert browser_files.find(tmp_path, "home", name) == tmp_path / name
    assert browser_files.find(tmp_path, "office", name) is None
    for bad in ("../monitor.db", "secret.txt", f"../{name}", name.replace(".png", ".txt")):
        assert browser_files.find(tmp_path, "home", bad) is None


# --- the extra -----------------------------------------------------------------------------------


def test_the_browser_lock_pins_the_tested_playwright():
    pins = dict(
        line.split("==")
        for line in (ROOT / "requirements-browser.lock").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert pins["playwright"] == metadata.version("playwright")
    for req in map(Requirement, metadata.requires("playwright") or []):
        if not req.marker:
            assert pins[req.name] == metadata.version(req.name), req
