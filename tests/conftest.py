"""Shared fixtures: the 2FAuth simulator on loopback, configuration files, the monitor as a process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_secret_registry() -> Iterator[None]:
    """Each test starts with no registered secret, as each monitor process does."""
    from monitor import secrets

    secrets.forget_all()
    yield
    secrets.forget_all()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sim() -> Iterator[Any]:
    """A simulated upstream 2FAuth v8 on a free loopback port."""
    from monitor import simulator

    handle = simulator.start_in_thread()
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def sim_probes() -> Iterator[Any]:
    """A simulated 2FAuth with the design's /live and /ready."""
    from monitor import simulator

    handle = simulator.start_in_thread(flavour="probes")
    try:
        yield handle
    finally:
        handle.stop()


def instance_config(url: str, name: str = "home", *, token: bool = True, **extra: Any) -> dict[str, Any]:
    """An instance entry watching a simulator, with its token and canary secret."""
    from monitor import simulator

    inst: dict[str, Any] = {"name": name, "url": url, "interval": "2s", "timeout": "2s"}
    if token:
        inst["token"] = simulator.DEFAULT_TOKEN
        inst["checks"] = {"totp": {"canary_secret": simulator.DEFAULT_CANARY_SECRET}}
    for key, value in extra.items():
        if key == "checks":
            inst.setdefault("checks", {})
            for check, settings in value.items():
                inst["checks"].setdefault(check, {}).update(settings)
        else:
            inst[key] = value
    return inst


class _NoAliasDumper(yaml.SafeDumper):
    """Writes a value used twice in full: the monitor refuses YAML anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_config(data: Any) -> str:
    """YAML of a configuration, as a user would write it (no anchors, keys in order)."""
    return yaml.dump(data, Dumper=_NoAliasDumper, sort_keys=False)


@pytest.fixture
def write_config(tmp_path: Path):
    """write_config(dict) -> path of a YAML file in the test's folder (storage defaults there too)."""

    def write(data: dict[str, Any], name: str = "monitor.yaml") -> Path:
        data = dict(data)
        data.setdefault("storage", {"path": str(tmp_path / "monitor.db")})
        path = tmp_path / name
        path.write_text(dump_config(data))
        return path

    return write


class MonitorProcess:
    """`2fauth-monitor run` as a real process; stop() sends SIGTERM and waits."""

    def __init__(self, config: Path, port: int, env: dict[str, str] | None = None, log: Path | None = None):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log or config.with_suffix(".log")
        full_env = {**os.environ, "MONITOR_LISTEN": f"127.0.0.1:{port}", **(env or {})}
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=ROOT,
        )

    def wait_live(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"monitor exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/live", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"monitor did not answer /live in {timeout}s:\n{self.output()}")

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self._log.closed:
            self._log.close()
        return self.proc.returncode


@pytest.fixture
def start_monitor():
    """start_monitor(config_path, env=None) -> a running MonitorProcess (answering /live); stopped after."""
    started: list[MonitorProcess] = []

    def start(config: Path, env: dict[str, str] | None = None, wait: bool = True) -> MonitorProcess:
        proc = MonitorProcess(config, free_port(), env)
        started.append(proc)
        if wait:
            proc.wait_live()
        return proc

    yield start
    for proc in started:
        proc.stop()


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.1, message: str = "condition"):
    """Poll until predicate() is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    """The CLI as a user runs it: a new process; returns exit code, stdout, stderr."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )


# --- the real upstream 2FAuth (tests marked real2fauth; see tests/real2fauth.py) ---------------


@pytest.fixture(scope="session")
def real_factory(tmp_path_factory):
    """real_factory(encryption=False) -> a fresh real 2FAuth v5.4.3; every one is stopped at the end."""
    from .real2fauth import Real2FAuth

    started: list[Any] = []

    def start(*, encryption: bool = False) -> Any:
        server = Real2FAuth(tmp_path_factory.mktemp("real2fauth") / "i", encryption=encryption)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def real_plain(real_factory):
    """A real 2FAuth with upstream defaults (secrets in clear), shared by the tests that undo their faults."""
    return real_factory()


@pytest.fixture(scope="session")
def real_encrypted(real_factory):
    """A real 2FAuth that encrypts secrets with APP_KEY ("Protect sensitive data" on), shared."""
    return real_factory(encryption=True)
