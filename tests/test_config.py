"""Configuration: every problem one line naming its key path, exit 2, never a traceback."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import config
from monitor.cli import main

from .conftest import run_cli

INVALID = sorted((Path(__file__).parent / "configs" / "invalid").glob("*.yaml"))


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_config_corpus_gives_the_exact_message(path, capsys, monkeypatch):
    monkeypatch.delenv("MONITOR_TEST_SURELY_UNSET", raising=False)
    expected = path.with_suffix(".expected").read_text().replace("{path}", str(path)).strip()
    code = main(["validate", "--config", str(path)])
    out = capsys.readouterr()
    assert code == 2
    assert out.err.strip() == expected
    assert "Traceback" not in out.err + out.out


def test_cli_process_reports_typo_in_one_line_and_exit_2(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("instances:\n  - name: home\n    url: https://x.example\n    timout: 5s\n")
    proc = run_cli("check", "--config", str(path))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: instances[0].timout: unknown key (did you mean timeout?)"
    ]
    assert "Traceback" not in proc.stderr


def test_missing_file_and_directory(tmp_path, capsys):
    assert main(["validate", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nope.yaml'}: no such file"
    assert main(["validate", "--config", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_every_problem_is_reported_at_once():
    raw = {
        "instances": [
            {"name": "a", "url": "ftp://x", "interval": "x"},
            {"name": "b", "url": "https://b.example", "timeout": "-"},
        ]
    }
    with pytest.raises(config.ConfigError) as err:
        config.from_mapping(raw, env={})
    paths = [line.split(":")[0] for line in err.value.problems]
    assert paths == ["instances[0].url", "instances[0].interval", "instances[1].timeout"]


def test_variables_and_defaults_are_substituted():
    raw = {
        "instances": [
            {
                "name": "home",
                "url": "${URL:-https://default.example}",
                "token": "${TOK}",
                "interval": "${IV:-30s}",
                "display_name": "costs $$5",
            }
        ]
    }
    s = config.from_mapping(raw, env={"TOK": "eyJabc.def.ghi"})
    inst = s.instances[0]
    assert inst.url == "https://default.example"
    assert inst.token.get_secret_value() == "eyJabc.def.ghi"
    assert inst.interval == 30
    assert inst.display_name == "costs $5"


def test_secret_files_are_read_and_never_repr(tmp_path):
    (tmp_path / "token").write_text("eyJsecret-token-value\n")
    (tmp_path / "canary").write_text("JBSWY3DPEHPK3PXP\n")
    raw = {
        "instances": [
            {
                "name": "home",
                "url": "https://x.example",
                "token_file": str(tmp_path / "token"),
                "checks": {"totp": {"canary_secret_file": str(tmp_path / "canary")}},
            }
        ]
    }
    s = config.from_mapping(raw, env={})
    inst = s.instances[0]
    assert inst.token.get_secret_value() == "eyJsecret-token-value"
    assert inst.checks.totp.canary_secret.get_secret_value() == "JBSWY3DPEHPK3PXP"
    assert "eyJsecret" not in repr(s) and "JBSWY3DP" not in repr(s)
    assert inst.enabled_checks() == ["live", "ready", "totp"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("2d", 172800), ("250ms", 0.25), (45, 45)],
)
def test_durations(text, seconds):
    assert config.parse_duration(text) == seconds


def test_environment_only_configuration(tmp_path):
    (tmp_path / "tok").write_text("eyJfrom-file")
    env = {
        "TWOFAUTH_URL": "http://2fauth:8000",
        "TWOFAUTH_TOKEN_FILE": str(tmp_path / "tok"),
        "CANARY_SECRET": "JBSWY3DPEHPK3PXP",
        "CANARY_ACCOUNT_ID": "7",
        "MONITOR_INTERVAL": "45s",
        "MONITOR_DB": str(tmp_path / "m.db"),
        "MONITOR_LISTEN": "0.0.0.0:8080",
    }
    s = config.load_any(None, env)
    inst = s.instances[0]
    assert (inst.name, inst.url, inst.interval) == ("2fauth", "http://2fauth:8000", 45)
    assert inst.token.get_secret_value() == "eyJfrom-file"
    assert inst.checks.totp.account_id == 7
    assert s.storage.path == str(tmp_path / "m.db")
    assert s.web.listen == "0.0.0.0:8080"


def test_no_configuration_at_all_says_what_to_do():
    with pytest.raises(config.ConfigError) as err:
        config.load_any(None, {})
    assert err.value.problems == [
        "no configuration: pass --config FILE, set MONITOR_CONFIG, or set TWOFAUTH_URL"
    ]


def test_validate_warns_when_the_api_budget_is_too_high(tmp_path):
    instances = [
        {
            "name": f"i{i}",
            "url": "https://same.example",
            "token": "t0ken-x",
            "interval": "5s",
            "timeout": "2s",
            "checks": {"totp": {"canary_secret": "JBSWY3DPEHPK3PXP"}},
        }
        for i in range(2)
    ]
    s = config.from_mapping({"instances": instances}, env={})
    lines = config.warnings(s)
    assert any("API requests a minute to same.example" in line and "THROTTLE_API" in line for line in lines)
    relaxed = config.from_mapping({"instances": [{**instances[0], "interval": "60s"}]}, env={})
    assert not any("THROTTLE_API" in line for line in config.warnings(relaxed))


_yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
_keys = st.sampled_from(
    [
        "instances",
        "storage",
        "web",
        "alerts",
        "name",
        "url",
        "interval",
        "timeout",
        "checks",
        "totp",
        "live",
        "token",
        "path",
        "digits",
        "listen",
        "bogus",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        _keys,
        _yaml_values | st.lists(st.dictionaries(_keys, _yaml_values, max_size=5), max_size=3),
        max_size=5,
    )
)
def test_fuzzed_configurations_give_one_line_errors_and_never_crash(raw):
    try:
        config.from_mapping(raw, env={})
    except config.ConfigError as exc:
        assert exc.problems
        for line in exc.problems:
            assert "\n" not in line and line.strip() == line and ": " in line


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_fuzzed_yaml_text_never_crashes(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "c.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        config.load(path, env={})
    except config.ConfigError as exc:
        assert all("\n" not in line for line in exc.problems)


def test_password_in_an_instance_url_is_redacted_everywhere():
    from monitor.secrets import redact

    config.from_mapping({"instances": [{"name": "home", "url": "https://me:pa55-w0rd@x.example"}]}, env={})
    assert redact("GET https://me:pa55-w0rd@x.example/up failed") == "GET https://me:***@x.example/up failed"


def test_instances_with_the_same_checks_and_with_other_checks_each_get_their_own_settings():
    same = {"live": {"path": "/up"}, "ready": {"enabled": False}}
    raw = {
        "instances": [
            {"name": "a", "url": "https://a.example", "checks": same},
            {
                "name": "b",
                "url": "https://b.example",
                "checks": {"live": {"path": "/up"}, "ready": {"enabled": False}},
            },
            {"name": "c", "url": "https://c.example", "checks": {"live": {"path": "/health"}}},
            {"name": "d", "url": "https://d.example", "checks": {"ready": {"enabled": 0}}},
        ]
    }
    a, b, c, d = config.from_mapping(raw, env={}).instances
    assert a.checks == b.checks and a.enabled_checks() == b.enabled_checks() == ["live"]
    assert c.checks.live.path == "/health" and "ready" in c.enabled_checks()
    assert d.enabled_checks() == ["live"] and d.checks.live.path != "/health"


def test_the_same_mistake_in_the_checks_of_several_instances_is_reported_for_each():
    bad = {"live": {"paht": "/up"}}
    raw = {"instances": [{"name": n, "url": f"https://{n}.example", "checks": dict(bad)} for n in "abc"]}
    with pytest.raises(config.ConfigError) as err:
        config.from_mapping(raw, env={})
    assert [line.split(":")[0] for line in err.value.problems] == [
        f"instances[{i}].checks.live.paht" for i in range(3)
    ]
