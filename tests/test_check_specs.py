"""Check types as specs: a new one is one module plus one registration line, everything else derives
from the registry; and one table from error kind to status, the README's."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from monitor.checks import SPECS
from monitor.checks.http import CheckFailure
from monitor.models import KIND_STATUS, Kind, Status, default_status

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ROOT / "monitor" / "checks"

# The throwaway check of tests/examples/manifest.py (the worked example of docs/architecture.md),
# registered with one line before anything else reads the registry, as monitor/checks/__init__.py does.
SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    sys.path.insert(0, sys.argv[2])
    import monitor.checks as checks
    import manifest
    checks.SPECS[manifest.SPEC.name] = manifest.SPEC

    from monitor import config
    from monitor.web import charts, openapi, wording

    url = sys.argv[1]
    settings = config.from_mapping(
        {"instances": [{"name": "home", "url": url, "checks": {"manifest": {"enabled": True}}}]}, env={}
    )
    inst = settings.instances[0]
    try:
        config.from_mapping(
            {"instances": [{"name": "home", "url": url, "checks": {"manifest": {"paht": "/x"}}}]}, env={}
        )
        problems = []
    except config.ConfigError as exc:
        problems = exc.problems
    off = config.from_mapping({"instances": [{"name": "home", "url": url}]}, env={}).instances[0]
    doc = openapi.document()

    async def run():
        ctx = checks.make_context(inst)
        try:
            return (await checks.run_check(ctx, "manifest")).to_dict()
        finally:
            await ctx.aclose()

    print(json.dumps({
        "enabled": inst.enabled_checks(),
        "enabled_by_default": off.enabled_checks(),
        "problems": problems,
        "wording": wording.CHECK_TEXT["manifest"],
        "dash": charts.DASHES["manifest"],
        "enum": doc["components"]["schemas"]["Check"]["properties"]["name"]["enum"],
        "result": asyncio.run(run()),
    }))
    """
)


def test_a_new_check_type_is_one_module_and_one_registration_line(sim):
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, sim.url, str(ROOT / "tests" / "examples")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    seen = json.loads(out.stdout)
    assert seen["enabled"] == ["live", "ready", "manifest"]  # no token: no TOTP flow
    assert seen["enabled_by_default"] == ["live", "ready"]  # the example is opt-in
    assert len(seen["problems"]) == 1 and seen["problems"][0].startswith(
        "instances[0].checks.manifest.paht:"
    ), seen["problems"]
    assert seen["wording"] == ["Web app manifest", "serves the file phones install the app from"]
    assert seen["dash"] == "8 2 2 2"
    assert "manifest" in seen["enum"]
    result = seen["result"]  # the simulator answers /manifest.json with its web page, not a manifest
    assert (result["check"], result["status"], result["kind"]) == ("manifest", "down", "bad_response")
    assert result["message"] == "GET /manifest.json: expected a web app manifest (JSON with a name)"
    assert [s["path"] for s in result["steps"]] == ["/manifest.json"]


def test_the_registry_lists_the_four_checks_in_page_order():
    assert list(SPECS) == ["live", "ready", "totp", "browser"]
    assert [s.label for s in SPECS.values()] == ["Web server", "Readiness", "TOTP codes", "Web app"]
    # the browser's web app calls 2FAuth's API too, within the same per-IP budget
    assert [name for name, s in SPECS.items() if s.uses_api.__name__ == "always"] == ["totp", "browser"]


def test_every_kind_has_a_default_status_and_failures_take_it():
    assert set(KIND_STATUS) == set(Kind)
    for kind in Kind:
        assert CheckFailure(kind, "x").status == KIND_STATUS[kind]
    assert CheckFailure(Kind.CONFIG, "x").status == Status.DEGRADED
    assert CheckFailure(Kind.TIMEOUT, "x").status == Status.DOWN
    assert default_status(Kind.NOT_READY) == Status.DOWN
    assert default_status(Kind.NOT_READY, warn=True) == Status.DEGRADED


def test_the_readme_error_kinds_table_is_the_kind_status_table():
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| ([a-z ]+) \|", readme, re.MULTILINE))
    for kind, status in KIND_STATUS.items():
        shown = "down or degraded" if kind == Kind.NOT_READY else status.value
        assert rows.get(kind.value) == shown, kind


def _modules() -> list[Path]:
    return sorted(CHECKS.glob("*.py"))


def test_checks_sit_below_config_without_cycles_or_hidden_imports():
    for path in _modules():
        tree = ast.parse(path.read_text())
        top = set(tree.body)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                )
                assert not any(
                    n.startswith(("monitor.config", "monitor.web", "monitor.alerts")) for n in names
                ), (
                    path.name,
                    names,
                )
                assert node in top, f"{path.name}:{node.lineno}: a function-level import"
                if path.name != "__init__.py" and isinstance(node, ast.ImportFrom):
                    # the registry imports the check modules; they never import it back
                    assert node.module != "monitor.checks", f"{path.name}:{node.lineno} imports the registry"


def test_no_check_module_is_over_400_lines_nor_a_function_over_60():
    for path in _modules():
        text = path.read_text()
        assert text.count("\n") <= 400, path.name
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert (node.end_lineno or 0) - node.lineno < 60, f"{path.name}: {node.name}"
