"""deploy/prometheus/rules.yml: promtool checks and unit-tests it, every alert has a test, and every
metric it names is one the monitor exports."""

from __future__ import annotations

import yaml

from tests.conftest import Site
from tests.prom import OUR_METRIC, RULE_TESTS, RULES, exported_names, promtool


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_check_rules_accepts_them() -> None:
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout


def test_promtool_unit_tests_pass() -> None:
    tested = promtool("test", "rules", RULE_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in rules()}
    assert names - firing == set(), "alerts no unit test sees firing"
    assert names - quiet == set(), "alerts no unit test sees quiet"


def test_the_issue_s_alerts_are_all_there() -> None:
    names = {rule["alert"] for rule in rules()}
    for wanted in (
        "Down",
        "DownFromSeveralLocations",
        "Degraded",
        "TokenExpiresSoon",
        "CertificateExpiresSoon",
    ):
        assert f"TwoFAuth{wanted}" in names
    assert {"TwoFAuthMonitorStalled", "TwoFAuthMonitorUnreachable", "TwoFAuthMonitorAbsent"} <= names


def test_every_metric_the_rules_use_is_exported(site: Site) -> None:
    exported = exported_names(site.get("/metrics").text)
    used = {name for rule in rules() for name in OUR_METRIC.findall(rule["expr"])}
    assert used, "the rules name no metric of the monitor"
    assert used - exported == set(), "the rules query metrics the monitor does not export"
