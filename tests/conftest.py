"""Shared fixtures: the 2FAuth simulator on loopback, configuration files, the monitor as a process."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
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


AWKWARD = 'Büro "Nord"\n</script>\\ 🔐'  # an instance label that breaks naive escaping


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


# --- the shared, seeded monitor: one per session, for the page, API, metrics and browser tests ---


@dataclass
class Site:
    url: str
    proc: MonitorProcess
    sim: Any
    sim_probes: Any
    db: Path
    config: Path

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **kw)


def _settle(url: str) -> None:
    """Until every check has a result from this run (the seeded history ends a minute ago)."""

    def fresh() -> bool:
        body = httpx.get(url + "/api/v1/status?window=24h", timeout=5).json()
        return all(c["age_s"] is not None and c["age_s"] < 30 for i in body["instances"] for c in i["checks"])

    wait_for(fresh, timeout=30, message="a live result for every check")


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Three instances: `home` up (URL shown), `family` up (probes flavour), `office` down."""
    from monitor import config, simulator
    from monitor.demo_history import seed_history
    from monitor.store import Store

    tmp = tmp_path_factory.mktemp("site")
    # the site lives for the whole session with 2 s checks, far past THROTTLE_API's 60 a minute;
    # rate limiting has tests of its own, so it is off here
    sim = simulator.start_in_thread(throttle=0)
    sim_probes = simulator.start_in_thread(flavour="probes", throttle=0)
    sim.set_faults(["server_error"], instance="office")
    db = tmp / "monitor.db"
    raw = {
        "instances": [
            instance_config(sim.url, "home", display_name="Home vault", show_url=True),
            instance_config(sim_probes.url, "family", display_name="Family"),
            instance_config(sim.url_for("office"), "office", display_name="Office"),
        ],
        "web": {"title": "Test status", "description": "Codes for the household.", "refresh": "30s"},
        "storage": {"path": str(db)},
    }
    path = tmp / "monitor.yaml"
    path.write_text(dump_config(raw))
    store = Store(db)
    seed_history(store, config.load(path))
    store.close()
    proc = MonitorProcess(path, free_port())
    try:
        proc.wait_live()
        _settle(proc.url)
        yield Site(proc.url, proc, sim, sim_probes, db, path)
    finally:
        proc.stop()
        sim.stop()
        sim_probes.stop()


@pytest.fixture
def receiver() -> Iterator[Any]:
    """A webhook receiver on loopback (tests/receiver.py), stopped after the test."""
    from tests.receiver import Receiver

    r = Receiver()
    yield r
    r.stop()


# --- TLS, and what a running monitor costs ---------------------------------------------------


def make_cert(tmp: Path, days: int) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, valid for `days`."""
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            str(days),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


@pytest.fixture
def tls_sim(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A simulated 2FAuth over TLS whose certificate (5 days left) names 127.0.0.1."""
    import uvicorn

    from monitor import simulator

    key, cert = make_cert(tmp_path, days=5)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            simulator.create_app(),
            host="127.0.0.1",
            port=port,
            log_level="error",
            ssl_keyfile=str(key),
            ssl_certfile=str(cert),
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"https://127.0.0.1:{port}", cert
    server.should_exit = True
    thread.join(5)


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a process (VmHWM; ru_maxrss would carry the parent's)."""
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) / 1024


def lag_max(url: str) -> float:
    """The scheduler's worst start lag, from the monitor's /metrics."""
    text = httpx.get(url + "/metrics", timeout=5).text
    match = re.search(r"^twofauth_monitor_scheduler_lag_max_seconds ([\d.e+-]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def rows(db: Path, instance: str) -> list[sqlite3.Row]:
    """The stored results of one instance, oldest first."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(
            "select * from results where instance = ? order by started_at", (instance,)
        ).fetchall()
    finally:
        conn.close()
