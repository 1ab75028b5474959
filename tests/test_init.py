"""`2fauth-monitor init` as a user runs it, against the simulator over loopback: the happy path with
flags and in a terminal, then every way it must refuse, each one line with exit code 2 (the user's
mistake) or 1 (2FAuth's problem)."""

from __future__ import annotations

import os
import pty
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from monitor import simulator

from .conftest import ROOT, free_port, run_cli


def init(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """init with no terminal on stdin (as from a script or CI), in a new process."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", "init", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def token_file(folder: Path, token: str = simulator.DEFAULT_TOKEN) -> Path:
    path = folder / "twofauth_token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path


def accounts(sim) -> list[dict]:
    headers = {"Authorization": f"Bearer {simulator.DEFAULT_TOKEN}"}
    return httpx.get(sim.url + "/api/v1/twofaccounts?withSecret=1", headers=headers).json()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("release", ["8.0.1", "5.4.3"])
def test_init_with_flags_writes_a_working_config_and_creates_the_canary(tmp_path, release):
    sim = simulator.start_in_thread(release=release)
    try:
        before = {a["id"] for a in accounts(sim)}
        done = init(
            "--url", sim.url, "--token-file", str(token_file(tmp_path)), "--create-canary",
            "--out", "monitor.yaml", cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"2FAuth {release} answers at {sim.url} (health: /up)" in done.stdout
        assert "3 checks, all up" in done.stdout
        created = [a for a in accounts(sim) if a["id"] not in before]
        assert len(created) == 1 and created[0]["service"] == "2fauth-monitor canary"
        assert created[0]["otp_type"] == "totp" and created[0]["digits"] == 6

        config = tmp_path / "monitor.yaml"
        data = yaml.safe_load(config.read_text())
        inst = data["instances"][0]
        totp = inst["checks"]["totp"]
        assert inst["url"] == sim.url and inst["name"] == "2fauth"
        assert inst["token_file"] == str(tmp_path / "twofauth_token")
        assert totp["account_id"] == created[0]["id"]
        secret_file = Path(totp["canary_secret_file"])
        assert mode(secret_file) == 0o600
        secret = secret_file.read_text().strip()
        assert len(secret) == 32 and created[0]["secret"].rstrip("=") == secret  # 160 bits, base32
        text = config.read_text() + done.stdout + done.stderr
        assert secret not in text and simulator.DEFAULT_TOKEN not in text  # secrets only in their files

        check = run_cli("check", "--config", str(config))
        assert check.returncode == 0, check.stdout + check.stderr
        assert check.stdout.count(": up") == 3
    finally:
        sim.stop()


def test_two_inits_make_two_different_secrets(sim, tmp_path):
    tok = token_file(tmp_path)
    first = init("--url", sim.url, "--token-file", str(tok), "--out", "a.yaml",
                 "--canary-secret-file", "a.secret", cwd=tmp_path)  # fmt: skip
    second = init("--url", sim.url, "--token-file", str(tok), "--out", "b.yaml",
                  "--canary-secret-file", "b.secret", cwd=tmp_path)  # fmt: skip
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert (tmp_path / "a.secret").read_text() != (tmp_path / "b.secret").read_text()
    # without --create-canary, 2FAuth is left as it was and the flow stores nothing
    assert "account_id" not in (tmp_path / "a.yaml").read_text()
    assert "created the canary" not in first.stdout


def test_an_existing_config_is_never_overwritten_without_force(sim, tmp_path):
    out = tmp_path / "monitor.yaml"
    out.write_text("# mine\n")
    args = ("--url", sim.url, "--token-file", str(token_file(tmp_path)), "--out", str(out))
    refused = init(*args, cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip() == f"error: --out: {out} already exists; pass --force to replace it"
    assert out.read_text() == "# mine\n" and not (tmp_path / "canary_secret").exists()

    (tmp_path / "canary_secret").write_text("OLD\n")
    refused = init(*args, cwd=tmp_path)
    assert refused.returncode == 2 and (tmp_path / "canary_secret").read_text() == "OLD\n"

    forced = init(*args, "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "instances:" in out.read_text()
    assert mode(tmp_path / "canary_secret") == 0o600 and (tmp_path / "canary_secret").read_text() != "OLD\n"


def one_line(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in done.stderr.splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def test_mistakes_are_one_line_and_exit_2(sim, tmp_path):
    tok = str(token_file(tmp_path))
    cases = [
        (("--token-file", tok), "--url is required"),
        (("--url", sim.url), "--token-file is required"),
        (("--url", "2fauth.example.com", "--token-file", tok), "is not an http:// or https:// URL"),
        (("--url", sim.url, "--token-file", str(tmp_path / "nope")), "--token-file: cannot read the file"),
        (("--url", sim.url, "--token-file", tok, "--name", "Bad Name"), "--name: use 1 to 63 lowercase"),
        (("--url", sim.url + "/nothing-here", "--token-file", tok), "is not the base URL of a 2FAuth"),
    ]
    for args, expected in cases:
        done = init(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert expected in one_line(done), (args, done.stderr)
    plain_file = tmp_path / "a-file"
    plain_file.write_text("")
    done = init("--url", sim.url, "--token-file", tok, "--create-canary", "--out", str(plain_file / "m.yaml"),
                cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and one_line(done) == f"error: --out: {plain_file} is not a directory"
    assert [a for a in accounts(sim) if a["service"] == "2fauth-monitor canary"] == []  # 2FAuth untouched
    empty = tmp_path / "empty"
    empty.write_text("\n")
    done = init("--url", sim.url, "--token-file", str(empty), cwd=tmp_path)
    assert done.returncode == 2 and one_line(done) == "error: --token-file: the file is empty"
    bearer = tmp_path / "bearer"
    bearer.write_text(f"Bearer {simulator.DEFAULT_TOKEN}\n")
    done = init("--url", sim.url, "--token-file", str(bearer), cwd=tmp_path)
    assert done.returncode == 2
    assert one_line(done) == 'error: --token-file: the file starts with "Bearer "; keep only the token in it'
    assert not (tmp_path / "monitor.yaml").exists()


def test_a_refused_token_is_exit_2_and_never_echoed(sim, tmp_path):
    bad = "eyJ-not-a-token-the-user-pasted"
    done = init("--url", sim.url, "--token-file", str(token_file(tmp_path, bad)), "--create-canary",
                cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2
    line = one_line(done)
    assert line.startswith("error: the token was refused: GET /api/v1/user answered 401")
    assert bad not in done.stdout + done.stderr
    assert "v8" in line  # the simulator runs 8.0.1: the token reset is worth saying
    assert not (tmp_path / "monitor.yaml").exists() and not (tmp_path / "canary_secret").exists()


def test_a_token_pasted_as_the_file_name_is_not_echoed(sim, tmp_path):
    done = init("--url", sim.url, "--token-file", simulator.DEFAULT_TOKEN, cwd=tmp_path)
    assert done.returncode == 2 and simulator.DEFAULT_TOKEN not in done.stdout + done.stderr


def test_a_readable_token_file_is_warned_about(sim, tmp_path):
    tok = token_file(tmp_path)
    tok.chmod(0o644)
    done = init("--url", sim.url, "--token-file", str(tok), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"warning: {tok} can be read by other users; run: chmod 600 {tok}" in done.stderr


def test_2fauth_problems_are_exit_1(tmp_path):
    tok = str(token_file(tmp_path))
    port = free_port()
    refused = init("--url", f"http://127.0.0.1:{port}", "--token-file", tok, cwd=tmp_path)
    assert refused.returncode == 1
    assert one_line(refused) == (
        f"error: http://127.0.0.1:{port}: connection to 127.0.0.1:{port} refused (nothing listens on that port?)"
    )
    for fault, expected in (("maintenance", "maintenance mode"), ("db_down", "2FAuth's API failed")):
        sim = simulator.start_in_thread(faults=[fault])
        try:
            done = init("--url", sim.url, "--token-file", tok, "--create-canary", cwd=tmp_path)
            assert done.returncode == 1, (fault, done.stderr)
            assert expected in one_line(done)
            assert not (tmp_path / "monitor.yaml").exists()
        finally:
            sim.stop()


def _converse(
    argv: list[str], answers: list[tuple[str, str]], cwd: Path, timeout: float = 60
) -> tuple[int, str]:
    """Run argv on a pseudo-terminal, typing each answer once its prompt shows; (exit code, output)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, its stdin a terminal
        os.chdir(cwd)
        os.environ["PYTHONPATH"] = str(ROOT)
        os.execv(sys.executable, [sys.executable, *argv])
    output, pending, deadline = b"", list(answers), time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break  # the child ended and closed the terminal
            if not chunk:
                break
            output += chunk
        if pending and pending[0][0].encode() in output:
            os.write(fd, (pending.pop(0)[1] + "\n").encode())
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_init_in_a_terminal_asks_for_what_is_missing(sim, tmp_path):
    code, output = _converse(
        ["-m", "monitor", "init"],
        [
            ("2FAuth URL", sim.url),
            ("Personal access token", f"Bearer {simulator.DEFAULT_TOKEN}"),
            ("[Y/n]", ""),
        ],
        tmp_path,
    )
    assert code == 0, output
    assert simulator.DEFAULT_TOKEN not in output  # typed without echo; a pasted "Bearer " is dropped
    assert "created the canary TOTP account" in output
    token = tmp_path / "twofauth_token"
    assert token.read_text().strip() == simulator.DEFAULT_TOKEN and mode(token) == 0o600
    data = yaml.safe_load((tmp_path / "monitor.yaml").read_text())
    assert data["instances"][0]["token_file"] == str(token)
    assert "account_id" in data["instances"][0]["checks"]["totp"]
