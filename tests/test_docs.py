"""The README's promises: every configuration key is documented, and every YAML example loads."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from monitor import config

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = README + "".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))


def _models(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def all_keys(model: type[BaseModel], prefix: str = "", seen=None) -> list[str]:
    seen = set() if seen is None else seen
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        for sub in _models(field.annotation):
            if sub not in seen:
                seen.add(sub)
                keys.extend(all_keys(sub, f"{prefix}{name}.", seen))
    return keys


@pytest.mark.parametrize("key", all_keys(config.Settings))
def test_every_configuration_key_is_documented(key):
    leaf = key.rsplit(".", 1)[-1]
    documented = re.search(rf"(^|[\s{{\[,-]){re.escape(leaf)}:", DOCS, re.M) or f"`{leaf}`" in DOCS
    assert documented, f"{key} is not in the README or docs/"


def yaml_blocks(text: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", text, re.S)


@pytest.mark.parametrize("block", yaml_blocks(README), ids=lambda b: b.splitlines()[0][:40])
def test_every_yaml_example_in_the_readme_loads(block):
    env = {name: "example-value" for name in re.findall(r"\$\{([A-Z_]+)", block)}
    env.update(
        TWOFAUTH_TOKEN="eyJ.example.token",
        CANARY_SECRET="JBSWY3DPEHPK3PXP",
        WEBHOOK_SECRET="s3cret-value",
        SLACK_URL="slack://T000/B000/XXXX/#ops",
    )
    raw = yaml.safe_load(block)
    raw.setdefault("instances", [{"name": "home", "url": "https://2fauth.example.com"}])
    config.from_mapping(raw, env=env)


def test_every_error_kind_is_documented():
    from monitor.models import Kind

    for kind in Kind:
        assert f"| `{kind.value}` |" in README, kind


def test_the_readme_gives_the_two_commands():
    assert "./dev demo" in README and "./dev test" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./dev test" in ci


def test_every_environment_variable_is_in_the_readme_table():
    from monitor.config.environment import CANARY_KEYS, INSTANCE_KEYS, OVERRIDES

    table = README.split("### Configuration from the environment alone", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in config.ENV_VARIABLES if f"`{name}`" not in table]
    assert missing == [], f"not in the README's environment table: {missing}"
    read = {*INSTANCE_KEYS, *CANARY_KEYS, *OVERRIDES, "TWOFAUTH_URL", "TWOFAUTH_NAME", "MONITOR_TITLE"}
    assert read <= set(config.ENV_VARIABLES), read - set(config.ENV_VARIABLES)
