"""Every example configuration in examples/ is valid as `2fauth-monitor validate` reads it, keeps its
secrets out of the file, and is listed in the README."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
SECRET_KEYS = {"token", "canary_secret", "secret", "password"}


def test_there_are_examples_and_the_readme_lists_each():
    readme = (ROOT / "README.md").read_text()
    assert len(EXAMPLES) >= 4
    for path in EXAMPLES:
        assert f"examples/{path.name}" in readme, path.name


def _secret_values(node, key=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _secret_values(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _secret_values(v, key)
    elif key in SECRET_KEYS:
        yield str(node)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_an_example_validates_with_its_secret_files_beside_it(example: Path, tmp_path: Path):
    text = example.read_text()
    for inline in _secret_values(yaml.safe_load(text)):
        assert re.fullmatch(r"\$\{[A-Z_]+\}", inline), f"{example.name}: a secret written inline: {inline}"
    shutil.copy(example, tmp_path / example.name)
    for relative in re.findall(r"(?:_file|ca_bundle): (secrets/\S+)", text):
        path = tmp_path / relative
        path.parent.mkdir(exist_ok=True)
        path.write_text(
            "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n" if "canary" in relative else "eyJ.example.token\n"
        )
    env = {name: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" for name in re.findall(r"\$\{([A-Z_]+)", text)}
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "validate", "--config", example.name],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "configuration is valid: " in done.stdout
