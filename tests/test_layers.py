"""The import-linter contracts in pyproject.toml hold for the code, and break when an import
crosses a layer or closes a cycle (checked on a copy of the package, with one bad import added);
docs/architecture.md names files that exist and the layers the contract draws."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}  # this copy's `monitor`, not the installed one
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_code_keeps_every_contract() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        # the store reaching up to maintenance windows (above config): no cycle, a layer crossed
        ("store/queries.py", "import monitor.maintenance", "Layers"),
        # the page renderer importing the feed, which imports the renderer: a cycle inside monitor.web
        ("web/render.py", "import monitor.web.feed", "No import cycles"),
    ],
)
def test_a_bad_import_breaks_a_contract(tmp_path: Path, module: str, bad_import: str, contract: str) -> None:
    shutil.copytree(ROOT / "monitor", tmp_path / "monitor", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    assert lint_imports(tmp_path).returncode == 0  # the copy itself is clean
    target = tmp_path / "monitor" / module
    target.write_text(target.read_text() + f"\n{bad_import}  # noqa: E402\n")
    done = lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    broken = [line for line in done.stdout.splitlines() if " BROKEN" in line]
    assert len(broken) == 1 and broken[0].startswith(contract), done.stdout


def test_every_file_the_architecture_page_names_exists() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"\b((?:monitor|templates|tests)/[\w/]*\w(?:\.\w+)?)", text))
    missing = sorted(n for n in named if not (ROOT / n).exists() and n not in EXAMPLES)
    assert missing == [], f"docs/architecture.md names files that do not exist: {missing}"
    # the layers it lists are the contract's layers
    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    for layer in contract["layers"]:
        for module in layer.split(" | "):
            assert f"`{module}`" in text or f"`{module.removeprefix('monitor.')}`" in text, module


EXAMPLES = {
    "monitor/checks/manifest.py",
    "monitor/notifiers/ntfy.py",
    "templates/maintenance.html",
}  # the worked examples' new files
