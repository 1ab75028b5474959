"""Every fault the simulator can inject gives the right status and kind, over real loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest

from monitor import config, simulator
from monitor.checks import make_context, run_check
from monitor.scheduler import run_all_once

from .conftest import free_port, instance_config, run_cli


def settings_for(url: str, **extra) -> config.Settings:
    inst = instance_config(url, **extra)
    return config.from_mapping({"instances": [inst]}, env={})


def results_by_check(settings: config.Settings) -> dict[str, object]:
    return {r.check: r for r in asyncio.run(run_all_once(settings))}


def brief(result) -> tuple[str, str | None]:
    return (str(result.status), str(result.kind) if result.kind else None)


def test_healthy_upstream_instance_is_up_through_the_fallbacks(sim):
    results = results_by_check(settings_for(sim.url))
    assert {c: brief(r) for c, r in results.items()} == {
        "live": ("up", None),
        "ready": ("up", None),
        "totp": ("up", None),
    }
    assert results["live"].path == "/up"  # /live is the web page upstream
    assert "upstream 2FAuth" in results["live"].message
    assert results["ready"].path == "/api/v1/twofaccounts/count"
    assert results["live"].version == "8.0.1"
    assert [s.name for s in results["totp"].steps] == ["user", "otp"]
    assert abs(results["totp"].skew_s) <= 2


def test_healthy_probes_instance_uses_live_and_ready(sim_probes):
    results = results_by_check(settings_for(sim_probes.url))
    assert {c: brief(r) for c, r in results.items()} == {
        "live": ("up", None),
        "ready": ("up", None),
        "totp": ("up", None),
    }
    assert results["live"].path == "/live"
    assert results["ready"].path == "/ready"
    assert results["ready"].components.get("database") == "pass"


def test_the_web_page_on_a_health_path_is_never_up(sim):
    results = results_by_check(settings_for(sim.url, token=False, checks={"live": {"path": "/live"}}))
    assert brief(results["live"]) == ("down", "not_a_health_endpoint")
    assert "use path: /up" in results["live"].message


@pytest.mark.parametrize(
    ("faults", "params", "extra", "check", "expected"),
    [
        (["server_error"], {}, {}, "live", ("down", "server_error")),
        (["maintenance"], {}, {}, "live", ("down", "maintenance")),
        (["reset"], {}, {}, "live", ("down", "connect")),
        (["slow"], {"delay": 5}, {}, "live", ("down", "timeout")),
        (["slow"], {"delay": 1.5}, {"interval": "10s", "timeout": 8}, "live", ("degraded", "slow")),
        (["slow"], {"delay": 1.5}, {"interval": "10s", "timeout": 8}, "totp", ("degraded", "slow")),
        (
            ["slow"],
            {"delay": 1.5},
            {"interval": "10s", "timeout": 8, "checks": {"live": {"slow_after": 0}}},
            "live",
            ("up", None),
        ),
        (["db_down"], {}, {}, "live", ("up", None)),
        (["db_down"], {}, {}, "ready", ("down", "server_error")),
        (["db_down"], {}, {}, "totp", ("down", "server_error")),
        (["clock_skew"], {"skew": 120}, {}, "totp", ("degraded", "clock_skew")),
        (["wrong_codes"], {}, {}, "totp", ("down", "otp_mismatch")),
        (["rate_limited"], {}, {}, "totp", ("degraded", "rate_limited")),
        (["bad_json"], {}, {}, "totp", ("down", "bad_response")),
        (
            ["app_key"],
            {},
            {"checks": {"totp": {"account_id": simulator.CANARY_ACCOUNT_ID}}},
            "totp",
            ("down", "decrypt"),
        ),
        (["md5_refused"], {}, {"checks": {"totp": {"algorithm": "md5"}}}, "totp", ("degraded", "config")),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_each_fault_gives_its_status_and_kind(sim, faults, params, extra, check, expected):
    sim.set_faults(faults, **params)
    results = results_by_check(settings_for(sim.url, **extra))
    assert brief(results[check]) == expected, results[check].message


def test_clock_skew_is_measured_in_seconds(sim):
    sim.set_faults(["clock_skew"], skew=-300)
    result = results_by_check(settings_for(sim.url))["totp"]
    assert -303 <= result.skew_s <= -297
    assert re.search(r"off by -(299|300|301)s", result.message)


def test_db_down_on_probes_names_the_database(sim_probes):
    sim_probes.set_faults(["db_down"])
    ready = results_by_check(settings_for(sim_probes.url))["ready"]
    assert brief(ready) == ("down", "not_ready")
    assert "database" in ready.message
    assert ready.components["database"] == "fail"


def test_ready_warn_is_degraded(sim_probes):
    sim_probes.set_faults(["ready_warn"])
    ready = results_by_check(settings_for(sim_probes.url))["ready"]
    assert brief(ready) == ("degraded", "not_ready")


def test_connection_refused_is_connect():
    port = free_port()
    results = results_by_check(settings_for(f"http://127.0.0.1:{port}", token=False))
    assert brief(results["live"]) == ("down", "connect")


def test_wrong_token_is_auth(sim):
    s = config.from_mapping(
        {
            "instances": [
                instance_config(sim.url, token=True) | {"token": simulator.make_token(exp=None) + "x"}
            ]
        },
        env={},
    )
    results = results_by_check(s)
    assert brief(results["totp"]) == ("down", "auth")
    assert "401" in results["totp"].message


def test_token_expiring_soon_is_degraded(sim):
    soon = simulator.make_token(exp=int(time.time()) + 3 * 86400)
    handle = simulator.start_in_thread(tokens=(soon,))
    try:
        s = config.from_mapping({"instances": [instance_config(handle.url) | {"token": soon}]}, env={})
        totp = results_by_check(s)["totp"]
    finally:
        handle.stop()
    assert brief(totp) == ("degraded", "token_expiry")
    assert 2.9 < totp.token_days < 3.1


def test_unknown_api_path_is_http_status(sim):
    results = results_by_check(settings_for(sim.url, token=False, checks={"live": {"path": "/api/v1/nope"}}))
    assert brief(results["live"]) == ("down", "http_status")
    assert "404" in results["live"].message


def test_rate_limit_skips_runs_until_retry_after(sim):
    settings = settings_for(sim.url)
    inst = settings.instances[0]

    async def two_runs():
        ctx = make_context(inst)
        try:
            first = await run_check(ctx, "totp")
            sim.set_faults([])
            second = await run_check(ctx, "totp")
            return first, second
        finally:
            await ctx.aclose()

    sim.set_faults(["rate_limited"])
    before = sim.state()["counters"]["total_requests"]
    first, second = asyncio.run(two_runs())
    assert brief(first) == ("degraded", "rate_limited")
    assert brief(second) == ("degraded", "rate_limited")
    assert second.message.startswith("skipped")
    after = sim.state()["counters"]["total_requests"]
    assert after - before == 1  # the second run sent nothing


@pytest.mark.parametrize(
    ("otp_type", "algorithm", "digits", "period"),
    [
        ("totp", alg, d, p)
        for alg in ("sha1", "sha256", "sha512", "md5")
        for d, p in ((5, 30), (6, 30), (8, 60))
    ]
    + [("totp", "sha1", 10, 15), ("steamtotp", "sha1", 5, 30)],
)
def test_all_parameters_match_the_simulator(sim, otp_type, algorithm, digits, period):
    extra = {
        "checks": {"totp": {"otp_type": otp_type, "algorithm": algorithm, "digits": digits, "period": period}}
    }
    totp = results_by_check(settings_for(sim.url, **extra))["totp"]
    assert brief(totp) == ("up", None), totp.message


def test_stored_canary_is_listed_without_touching_hotp(sim):
    totp = results_by_check(
        settings_for(sim.url, checks={"totp": {"account_id": simulator.CANARY_ACCOUNT_ID}})
    )["totp"]
    assert brief(totp) == ("up", None), totp.message
    # the encryption setting is read once an hour, before the stored canary
    assert [s.name for s in totp.steps] == ["user", "otp", "encryption setting", "stored canary"]
    assert "deciphers with APP_KEY" in totp.message
    hotp_before = sim.state()["counters"]["hotp_reads"]
    refused = results_by_check(
        settings_for(sim.url, checks={"totp": {"account_id": simulator.HOTP_ACCOUNT_ID}})
    )["totp"]
    assert brief(refused) == ("degraded", "config")
    assert "HOTP" in refused.message
    assert sim.state()["counters"]["hotp_reads"] == hotp_before


def test_sub_directory_install(sim):
    sim.set_faults(["server_error"], instance="other")
    home = results_by_check(settings_for(sim.url_for("home")))
    other = results_by_check(settings_for(sim.url_for("other")))
    assert all(r.status == "up" for r in home.values())
    assert brief(other["live"]) == ("down", "server_error")


# --- TLS -------------------------------------------------------------------------------------


def test_certificate_expiring_soon_is_degraded_and_days_recorded(tls_sim):
    url, cert = tls_sim
    results = results_by_check(settings_for(url, ca_bundle=str(cert)))
    assert brief(results["live"]) == ("degraded", "cert_expiry")
    assert 4 < results["live"].cert_days < 5.1
    assert brief(results["totp"]) == ("up", None)  # one certificate, one alerting check


def test_unverifiable_certificate_is_tls(tls_sim):
    url, _ = tls_sim
    results = results_by_check(settings_for(url, token=False))
    assert brief(results["live"]) == ("down", "tls")


def test_plain_http_port_spoken_to_with_tls_is_tls(sim):
    results = results_by_check(settings_for(sim.url.replace("http://", "https://"), token=False))
    assert brief(results["live"]) in (("down", "tls"), ("down", "connect"))


# --- the command ---------------------------------------------------------------------------


def test_check_command_json_and_exit_codes(sim, write_config):
    path = write_config({"instances": [instance_config(sim.url)]})
    ok = run_cli("check", "--config", str(path), "--json")
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert [(r["instance"], r["check"], r["status"]) for r in doc["results"]] == [
        ("home", "live", "up"),
        ("home", "ready", "up"),
        ("home", "totp", "up"),
    ]
    for r in doc["results"]:
        assert set(r) >= {
            "instance",
            "check",
            "status",
            "kind",
            "message",
            "latency_ms",
            "http_status",
            "path",
            "steps",
        }
        for step in r["steps"]:
            assert set(step) == {"name", "method", "path", "status", "duration_ms", "outcome"}
    sim.set_faults(["wrong_codes"])
    bad = run_cli("check", "--config", str(path))
    assert bad.returncode == 1
    assert "home/totp: down [otp_mismatch]" in bad.stdout
    for secret in (simulator.DEFAULT_TOKEN, simulator.DEFAULT_CANARY_SECRET):
        assert secret not in ok.stdout + ok.stderr + bad.stdout + bad.stderr


def test_version_is_read_once_from_the_web_page_on_a_probes_instance(sim_probes):
    settings = settings_for(sim_probes.url, token=False)
    inst = settings.instances[0]

    async def two_runs():
        ctx = make_context(inst)
        try:
            return await run_check(ctx, "live"), await run_check(ctx, "live")
        finally:
            await ctx.aclose()

    first, second = asyncio.run(two_runs())
    assert first.version == second.version == "8.0.1"
    assert [s.name for s in first.steps] == ["probe /live", "version"]
    assert [s.name for s in second.steps] == ["probe /live"]


def test_release_is_detected_from_the_answers():
    """Not from the version the page shows: a 5.4.3 API behind a page saying 8.0.1 is still v5."""
    with simulator.start_in_thread(release="5.4.3", version="8.0.1") as old:
        results = results_by_check(settings_for(old.url))
    assert {c: brief(r) for c, r in results.items()} == dict.fromkeys(("live", "ready", "totp"), ("up", None))
    assert results["live"].version == "8.0.1"
    assert results["totp"].release.startswith("API of 2FAuth v5 ("), results["totp"].release
    with simulator.start_in_thread() as new:
        results = results_by_check(settings_for(new.url))
    assert results["ready"].release.startswith("API of 2FAuth v7 or later ("), results["ready"].release
    assert "JSON 404" in results["ready"].release


def test_md5_refusal_at_a_short_offset_is_up_with_a_note():
    from monitor.otp import MD5_SHORT_OFFSETS, md5_offset

    now = int(time.time())
    secret = next(
        s
        for s in (f"{n:08d}".translate(str.maketrans("0123456789", "ABCDEFGHIJ")) * 4 for n in range(5000))
        if all(md5_offset(s, now + 30 * k) in MD5_SHORT_OFFSETS for k in range(3))
    )
    stored = simulator.Account(7, "totp", "md5", "Md5", secret, algorithm="md5")
    with simulator.start_in_thread(release="5.4.3", accounts=[stored]) as old:
        totp_cfg = {"canary_secret": secret, "algorithm": "md5", "account_id": 7}
        totp = results_by_check(settings_for(old.url, checks={"totp": totp_cfg}))["totp"]
    assert brief(totp) == ("up", None), totp.message
    assert "2FAuth cannot compute md5 codes at this time step" in totp.message


def test_release_generation_from_each_combination_of_facts():
    from monitor.checks.release import generation

    assert generation({"readiness": "count", "next_password": False}) == "v5"
    assert generation({"readiness": "count", "next_password": True}) == "v6"
    assert generation({"readiness": "count", "unknown_api": "web_page"}) == "v5 or v6"
    assert generation({"readiness": "total", "next_password": True}) == "v7 or later"
    assert generation({"unknown_api": "json404"}) == "v7 or later"
    assert generation({"readiness": "count", "unknown_api": "json404"}) is None  # no release answers so
    assert generation({}) is None
