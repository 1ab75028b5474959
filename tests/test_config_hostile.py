"""Mistaken or hostile configuration files: YAML bombs and deep nesting are one-line errors with
bounded memory, a value pasted into the wrong field is never echoed (validate, SIGHUP reload), and
`validate` warns about a token sent over plain http://."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys

import yaml

from monitor import simulator

from .conftest import ROOT, instance_config, run_cli, wait_for

PASTED = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXBhc3RlZC1pbnRvLXRoZS13cm9uZy1maWVsZA.sig"
MEMORY_LIMIT = 1024 * 1024 * 1024  # 1 GiB of address space for the validating process

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
instances:
  - name: home
    url: http://127.0.0.1:9
    interval: ${X:-60s}
extra: *i
"""


def validate_bounded(path) -> subprocess.CompletedProcess:
    """`validate` as a new process whose address space is capped: a bomb cannot take the machine."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    return subprocess.run(
        [sys.executable, "-m", "monitor", "validate", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        preexec_fn=cap,
    )


def test_a_billion_laughs_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(BILLION_LAUGHS)
    assert len(BILLION_LAUGHS) < 1024
    proc = validate_bounded(path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "anchors and aliases" in proc.stderr and "Traceback" not in proc.stderr


def test_deep_nesting_is_a_one_line_error(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("instances: " + "[" * 50_000 + "]" * 50_000 + "\n")
    proc = validate_bounded(path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1, proc.stderr[-2000:]
    assert "nested more than 32 levels deep" in proc.stderr


def test_a_value_tagged_with_the_wrong_type_is_a_one_line_error_that_does_not_echo_it(tmp_path):
    path = tmp_path / "tagged.yaml"
    for tag in ("!!int", "!!bool", "!!timestamp", "!!float"):
        path.write_text(
            f"instances:\n  - name: home\n    url: http://127.0.0.1:9\n    token: {tag} {PASTED}\n"
        )
        proc = validate_bounded(path)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert f"{path}:4: not valid YAML" in proc.stderr and PASTED not in proc.stderr


def test_a_value_in_the_wrong_field_is_never_echoed(write_config):
    inst = instance_config("http://127.0.0.1:9", interval=PASTED, token=False, token_file=PASTED)
    window = {"time": "02:00", "duration": "1h", "timezone": PASTED}
    cron = {"cron": PASTED, "duration": "1h"}
    proc = run_cli(
        "validate", "--config", str(write_config({"instances": [inst], "maintenance": [window, cron]}))
    )
    assert proc.returncode == 2
    assert PASTED not in proc.stdout + proc.stderr
    assert PASTED[:12] not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert (
        "error: instances[0].interval: is not a duration: use a number with s, m, h or d, such as 30s or 5m"
        in lines
    )
    assert any(line.startswith("error: maintenance[0].timezone: unknown time zone") for line in lines)
    assert any(line.startswith("error: maintenance[1].cron: is not a cron expression") for line in lines)
    assert "error: instances[0].token_file: cannot read the file: No such file or directory" in lines


def test_a_refused_reload_never_echoes_the_value(write_config, start_monitor):
    inst = instance_config("http://127.0.0.1:9", token=False, interval="5s", timeout="1s")
    path = write_config({"instances": [inst]})
    mon = start_monitor(path)
    raw = yaml.safe_load(path.read_text())
    raw["instances"][0]["interval"] = PASTED
    raw["maintenance"] = [{"time": "02:00", "duration": "1h", "timezone": PASTED}]
    path.write_text(yaml.safe_dump(raw))
    mon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "running configuration is kept" in mon.output(), message="the refused reload")
    out = mon.output()
    assert "instances[0].interval: is not a duration" in out
    assert PASTED not in out and PASTED[:12] not in out


def test_validate_warns_about_a_token_over_plain_http(write_config):
    remote = instance_config("http://2fauth.example.org", name="remote")
    local = instance_config("http://127.0.0.1:8000", name="local")
    tls = instance_config("https://2fauth.example.org", name="tls")
    proc = run_cli("validate", "--config", str(write_config({"instances": [remote, local, tls]})))
    assert proc.returncode == 0, proc.stderr
    warned = [line for line in proc.stdout.splitlines() if "plain http://" in line]
    assert warned == [
        "warning: instances[0].url: the token is sent over plain http:// to another machine, where anyone "
        "on the path can read it; use https://"
    ]
    assert simulator.DEFAULT_TOKEN not in proc.stdout
