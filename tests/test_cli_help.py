"""What the command line says about itself: --version, and a help page for every command with a
description, its exit codes and examples that really parse; counts in words; the timeout default."""

from __future__ import annotations

import re
import shlex
import tomllib

import pytest

from monitor import cli

from .conftest import ROOT, instance_config, run_cli

COMMANDS = list(cli.COMMANDS)


def test_version_is_the_package_version():
    done = run_cli("--version")
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert done.returncode == 0
    assert done.stdout.strip() == f"2fauth-monitor {version}"


def test_every_command_has_a_help_page():
    assert set(COMMANDS) == set(cli.HELP)  # a new command cannot come without its page
    top = run_cli("--help")
    assert top.returncode == 0
    for name in COMMANDS:
        assert re.search(rf"^\s+{re.escape(name)}\b", top.stdout, re.MULTILINE), name


@pytest.mark.parametrize("command", COMMANDS)
def test_a_commands_help_has_a_description_exit_codes_and_examples(command):
    done = run_cli(command, "--help")
    assert done.returncode == 0, done.stderr
    page = done.stdout
    summary, description, _, _ = cli.HELP[command]
    assert description.splitlines()[0] in page  # kept as written (RawDescriptionHelpFormatter)
    codes = page.split("exit codes:\n", 1)[1].split("\n\n", 1)[0]
    assert re.findall(r"^  (\d+)\s+\S", codes, re.MULTILINE)[0] == "0", codes
    examples = page.split("examples:\n", 1)[1].strip()
    assert examples.startswith(f"2fauth-monitor {command}"), examples


@pytest.mark.parametrize("command", COMMANDS)
def test_every_example_parses(command):
    """The examples are command lines that the parser accepts, not prose that drifts."""
    examples = cli.HELP[command][3].replace("\\\n", " ")
    parser = cli.build_parser()
    for line in examples.splitlines():
        words = shlex.split(line, comments=True)
        words = [w for w in words if not re.fullmatch(r"[A-Z_]+=\S*", w)]  # VAR=value prefixes
        assert words[0] == "2fauth-monitor", line
        args = parser.parse_args(words[1:])
        assert args.command == command


def test_validate_counts_in_words(write_config, tmp_path):
    one = write_config({"instances": [instance_config("http://127.0.0.1:9", token=False)]})
    done = run_cli("validate", "--config", str(one))
    assert done.returncode == 0, done.stderr
    assert "configuration is valid: 1 instance, 2 checks" in done.stdout
    two = {
        "instances": [
            instance_config("http://127.0.0.1:9", token=False, checks={"ready": {"enabled": False}}),
            instance_config("http://127.0.0.1:8", name="office"),
        ]
    }
    done = run_cli("validate", "--config", str(write_config(two, "two.yaml")))
    assert "configuration is valid: 2 instances, 4 checks" in done.stdout


def test_a_short_interval_alone_is_valid_and_the_timeout_follows_it(write_config):
    from monitor import config

    path = write_config(
        {"instances": [{"name": "home", "url": "https://2fauth.example.com", "interval": "5s"}]}
    )
    done = run_cli("validate", "--config", str(path))
    assert done.returncode == 0, done.stderr
    inst = config.load(path).instances[0]
    assert (inst.interval, inst.timeout) == (5.0, 5.0)
    default = config.from_mapping({"instances": [{"name": "a", "url": "https://x.example"}]}, env={})
    assert default.instances[0].timeout == 10.0
    explicit = {"instances": [{"name": "a", "url": "https://x.example", "interval": "5s", "timeout": "8s"}]}
    with pytest.raises(config.ConfigError) as refused:
        config.from_mapping(explicit, env={})
    assert refused.value.problems == [
        "instances[0]: timeout (8s) is longer than interval (5s); a run must end before the next one"
    ]
