"""Push targets (Uptime Kuma, Healthchecks, Gatus) and the heartbeat: each format exactly as the
receivers expect it, down then up again against the simulator, a receiver that is down or slow never
delaying a check, the heartbeat failing over to /fail when the database cannot be written, and no
push URL or token anywhere a user or an attacker could read it."""

from __future__ import annotations

import pytest

from monitor import config

KUMA_TOKEN = "AbCdEf123kuma"
HC_UUID = "5b2c0e1a-hc-uuid-77d1"
GATUS_TOKEN = "gatus-bearer-9e4f21"
HEARTBEAT_UUID = "9f1e77aa-heartbeat"


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("push", "expected"),
    [
        (
            {"type": "uptime_kuma", "url": "https://k.example/api/push/x", "instance": "nope"},
            "push[0].instance: no instance has this name (configured: home)",
        ),
        (
            {"type": "gatus", "url": "https://g.example", "instance": "home", "token": "abcdefgh"},
            "push[0]: gatus needs key",
        ),
        (
            {"type": "gatus", "url": "https://g.example", "instance": "home", "key": "k"},
            "push[0]: gatus needs token",
        ),
        (
            {"type": "kuma", "url": "https://k.example", "instance": "home"},
            "push[0].type: must be 'uptime_kuma', 'healthchecks' or 'gatus'",
        ),
        (
            {"type": "healthchecks", "url": "ftp://hc.example/secret-path", "instance": "home"},
            "push[0].url: must be an http:// or https:// URL (the value is not shown)",
        ),
        ({"type": "healthchecks", "instance": "home"}, "push[0]: url is required (or url_file)"),
        (
            {"type": "healthchecks", "url": "https://hc.example/x", "instance": "home", "check": "totp"},
            "push[0].check: the check is not enabled on instance home",
        ),
        (
            {"type": "healthchecks", "url": "https://hc.example/x", "instance": "home", "chek": "live"},
            "push[0].chek: unknown key (did you mean check?)",
        ),
    ],
)
def test_push_configuration_errors_are_one_line_naming_the_key(push, expected):
    inst = {"name": "home", "url": "https://2fauth.example"}
    with pytest.raises(config.ConfigError) as info:
        config.from_mapping({"instances": [inst], "push": [push]})
    assert len(info.value.problems) == 1, info.value.problems
    assert info.value.problems[0].startswith(expected), info.value.problems
    assert "secret-path" not in info.value.problems[0]


def test_heartbeat_configuration_errors():
    inst = {"name": "home", "url": "https://2fauth.example"}
    for heartbeat, expected in (
        ({"interval": "60s"}, "heartbeat: url is required (or url_file)"),
        ({"url": "https://hc.example/x", "interval": "500ms"}, "heartbeat: interval must be at least 1s"),
    ):
        with pytest.raises(config.ConfigError) as info:
            config.from_mapping({"instances": [inst], "heartbeat": heartbeat})
        assert info.value.problems == [expected]


def test_push_secrets_from_files_and_variables_are_redacted(tmp_path):
    from monitor.secrets import redact

    (tmp_path / "url").write_text(f"https://hc.example/ping/{HC_UUID}\n")
    (tmp_path / "token").write_text(GATUS_TOKEN)
    (tmp_path / "hb").write_text(f"https://hc.example/ping/{HEARTBEAT_UUID}")
    settings = config.from_mapping(
        {
            "instances": [{"name": "home", "url": "https://2fauth.example"}],
            "push": [
                {"type": "healthchecks", "url_file": str(tmp_path / "url"), "instance": "home"},
                {
                    "type": "gatus",
                    "url": "https://g.example",
                    "key": "k",
                    "instance": "home",
                    "token_file": str(tmp_path / "token"),
                },
                {"type": "uptime_kuma", "url": "${KUMA_URL}", "instance": "home"},
            ],
            "heartbeat": {"url_file": str(tmp_path / "hb")},
        },
        env={"KUMA_URL": f"https://kuma.example/api/push/{KUMA_TOKEN}"},
    )
    assert settings.push[0].target_url() == f"https://hc.example/ping/{HC_UUID}"
    assert settings.heartbeat is not None and settings.heartbeat.interval == 60
    text = f"https://hc.example/ping/{HC_UUID}/fail {GATUS_TOKEN} https://kuma.example/api/push/{KUMA_TOKEN}?status=up https://hc.example/ping/{HEARTBEAT_UUID}"
    clean = redact(text)
    for secret in (HC_UUID, GATUS_TOKEN, KUMA_TOKEN, HEARTBEAT_UUID):
        assert secret not in clean, clean
