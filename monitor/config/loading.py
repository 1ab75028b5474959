"""Reading a configuration: YAML (read in one pass, its shape bounded as it is built), ${VAR:-default}
substitution, environment overrides, *_file secrets, then validation into frozen Settings."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from monitor import secrets
from monitor.checks import SPECS
from monitor.config import yamlread
from monitor.config.environment import apply_overrides, mapping_from_env
from monitor.config.errors import ConfigError, format_error, path_str
from monitor.config.instances import shared_sections
from monitor.config.schema import Settings

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _substitute(node: Any, env: Mapping[str, str], loc: tuple[Any, ...], problems: list[str]) -> Any:
    if isinstance(node, dict):
        return {k: _substitute(v, env, (*loc, k), problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, env, (*loc, i), problems) for i, v in enumerate(node)]
    if not isinstance(node, str) or "$" not in node:
        return node

    def repl(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(f"{path_str(loc)}: environment variable {name} is not set")
        return ""

    return _VAR.sub(repl, node)


def _read_secret_file(
    data: dict[str, Any], key: str, target: str, loc: tuple[Any, ...], problems: list[str]
) -> None:
    path = data.get(key)
    if path is None:
        return
    if not isinstance(path, str):
        return  # the model reports the type
    if data.get(target) is not None:
        return  # the model reports "not both"
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        # the path is not repeated: a secret pasted into token_file would be echoed with it
        problems.append(
            f"{path_str((*loc, key))}: cannot read the file: {exc.strerror or type(exc).__name__}"
        )
        return
    except UnicodeDecodeError:
        problems.append(f"{path_str((*loc, key))}: the file is not UTF-8 text")
        return
    if not value:
        problems.append(f"{path_str((*loc, key))}: the file is empty")
        return
    data[target] = value
    del data[key]


def _resolve_files(raw: dict[str, Any], problems: list[str]) -> None:
    instances = raw.get("instances")
    for i, inst in enumerate(instances if isinstance(instances, list) else []):
        if not isinstance(inst, dict):
            continue
        _read_secret_file(inst, "token_file", "token", ("instances", i), problems)
        checks = inst.get("checks")
        if not isinstance(checks, dict):
            continue
        for name, spec in SPECS.items():
            section = checks.get(name)
            if isinstance(section, dict):
                for file_key, key in spec.settings.secret_files.items():
                    _read_secret_file(section, file_key, key, ("instances", i, "checks", name), problems)


def _resolve_push_files(raw: dict[str, Any], problems: list[str]) -> None:
    targets = raw.get("push")
    for i, target in enumerate(targets if isinstance(targets, list) else []):
        if isinstance(target, dict):
            _read_secret_file(target, "url_file", "url", ("push", i), problems)
            _read_secret_file(target, "token_file", "token", ("push", i), problems)
    heartbeat = raw.get("heartbeat")
    if isinstance(heartbeat, dict):
        _read_secret_file(heartbeat, "url_file", "url", ("heartbeat",), problems)


def from_mapping(raw: Any, env: Mapping[str, str] | None = None) -> Settings:
    """Validate a parsed configuration; raises ConfigError with one line per problem."""
    env = os.environ if env is None else env
    if not isinstance(raw, dict):
        raise ConfigError(["(top level): the configuration must be a mapping of keys such as instances:"])
    problems: list[str] = []
    data = _substitute(raw, env, (), problems)
    apply_overrides(data, env)
    _resolve_files(data, problems)
    _resolve_push_files(data, problems)
    try:
        settings = Settings.model_validate(data, context=shared_sections())
    except ValidationError as exc:
        problems.extend(format_error(e) for e in exc.errors())
        settings = None
    if problems:
        raise ConfigError(sorted(set(problems), key=problems.index))
    assert settings is not None
    secrets.register_settings(settings)
    return settings


def load(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate a YAML configuration file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a directory, not a configuration file"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    try:
        raw = yamlread.read(text, str(path))
    except RecursionError:
        raise ConfigError([f"{path}: nested too deeply"]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError([f"{where}: not valid YAML: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {str(exc).splitlines()[0]}"]) from None
    if raw is None:
        raise ConfigError([f"{path}: the file is empty; it needs at least an instances: list"])
    return from_mapping(raw, env)


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    """A single-instance configuration from environment variables alone."""
    env = os.environ if env is None else env
    if not env.get("TWOFAUTH_URL"):
        raise ConfigError(["no configuration: pass --config FILE, set MONITOR_CONFIG, or set TWOFAUTH_URL"])
    raw, overrides = mapping_from_env(env)
    return from_mapping(raw, env=overrides)


def load_any(path: str | None, env: Mapping[str, str] | None = None) -> Settings:
    """--config FILE, else MONITOR_CONFIG, else the environment alone."""
    env = os.environ if env is None else env
    path = path or env.get("MONITOR_CONFIG")
    return load(path, env) if path else from_env(env)
