"""Shared by the Prometheus and Grafana tests: the shipped rules and dashboard, promtool, and the
names the monitor exports."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "deploy" / "prometheus"
RULES = RULES_DIR / "rules.yml"
RULE_TESTS = RULES_DIR / "rules.test.yml"
OUR_METRIC = re.compile(r"\btwofauth_[a-z_]+\b")


def promtool(*args: str, cwd: Path = RULES_DIR) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: apt-get install -y prometheus"
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def check_metrics(exposition: str) -> subprocess.CompletedProcess:
    """`promtool check metrics` on an exposition: format and naming problems."""
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: apt-get install -y prometheus"
    return subprocess.run(
        [tool, "check", "metrics"], input=exposition, capture_output=True, text=True, timeout=30
    )


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


SOURCE = ROOT / "deploy" / "grafana" / "dashboard.py"
DASHBOARD = ROOT / "deploy" / "grafana" / "2fauth-monitor.json"


def builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("grafana_dashboard", SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def committed() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def queries(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the panels."""
    return [target["expr"] for panel in panels(board) for target in panel["targets"]]


def concrete(expr: str) -> str:
    """A panel's query as Grafana sends it with every location and instance chosen."""
    for var, value in (
        ("$__rate_interval", "1m"),
        ("$__range", "5m"),
        ("$instance", ".*"),
        ("$location", ".*"),
    ):
        expr = expr.replace(var, value)
    return expr
