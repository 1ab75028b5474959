"""deploy/prometheus/rules.yml: promtool checks and unit-tests it, every alert has a test, and every
metric it names is one the monitor exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.test_web import Site, site_fixture  # noqa: F401  (the shared, seeded monitor)

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "deploy" / "prometheus"
RULES = RULES_DIR / "rules.yml"
RULE_TESTS = RULES_DIR / "rules.test.yml"
OUR_METRIC = re.compile(r"\btwofauth_[a-z_]+\b")


def promtool(*args: str, cwd: Path = RULES_DIR) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: apt-get install -y prometheus"
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def exported_names(exposition: str) -> set[str]:
    """Every name a PromQL query can use for the monitor's metrics: families and their samples."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + s for s in ("_bucket", "_count", "_sum"))
    return names


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
