"""The container and the pod, run here as Docker and Kubernetes would run them (no engine here).

What is read from the files themselves: the image's files (the build context that .dockerignore
leaves, put in place by the Dockerfile's COPY instructions), its ENV, WORKDIR, CMD and HEALTHCHECK;
the compose services' environment, secrets and env files; the Deployment's env, probes and mounts,
the ConfigMap's configuration and the Secret example's keys. What is rewritten, only because the
container's names cannot exist here: the 2FAuth service URL (-> the simulator on loopback), the
listen address (-> a free loopback port), /data, /run/secrets and /etc/2fauth-monitor (-> folders
of the test) and the secrets' values (-> the simulator's). The image's Python is a fresh virtual
environment that sees the dependencies installed for the tests and the monitor's wheel, built from
the files the Dockerfile copies and installed as its RUN line does (the copied sources are then
removed, as the image removes them), and nothing else of this checkout: a file the image lacks is
missing here too.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import time
import venv
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from docker.utils.build import exclude_paths
from dockerfile_parse import DockerfileParser

from monitor import simulator
from tests.conftest import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
KUBE = ROOT / "deploy" / "kubernetes"
DOCKER_STOP_TIMEOUT = 10.0  # docker stop's default before SIGKILL


class Image:
    """The image as `docker build` would make it: its /app assembled in a folder, its settings."""

    def __init__(self, where: Path) -> None:
        parser = DockerfileParser(path=str(ROOT / "Dockerfile"))
        self.env: dict[str, str] = parser.envs
        self.cmd: list[str] = json.loads(parser.cmd)
        self.rootfs = where
        self.bin = where.parent / "python" / "bin"
        ignore = (ROOT / ".dockerignore").read_text().splitlines()
        context = exclude_paths(str(ROOT), [p.strip() for p in ignore if p.strip() and not p.startswith("#")])
        workdir = "/"
        self.built: list[Path] = []  # the folders whose sources a RUN line built into a wheel
        for item in parser.structure:
            if item["instruction"] == "WORKDIR":
                workdir = posixpath.join(workdir, item["value"])
            elif item["instruction"] == "COPY":
                *sources, dest = shlex.split(item["value"])
                assert not any(s.startswith("--") for s in sources), f"COPY flags not modelled: {item}"
                into_dir = dest.endswith("/") or dest == "." or len(sources) > 1
                for source in sources:
                    target = where / posixpath.join(workdir, dest).lstrip("/")
                    self._copy(context, source, target, into_dir)
            elif item["instruction"] == "RUN" and re.search(
                r"pip install .*--no-deps \.(\s|$)", item["value"]
            ):
                self.built.append(where / workdir.lstrip("/"))
                removed = re.search(r"rm -rf (\S+)", item["value"])
                assert removed and removed.group(1) == workdir, f"the build folder is not removed: {item}"
            elif item["instruction"] == "HEALTHCHECK":
                self.healthcheck = json.loads(item["value"].split(" CMD ", 1)[1])
            elif item["instruction"] == "ENTRYPOINT":
                raise AssertionError("an ENTRYPOINT is not modelled here: teach Image about it")
        assert len(self.built) == 1, "the Dockerfile should build and install the monitor once"
        self.workdir = where / workdir.lstrip("/")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._install(where.parent / "python")

    def _install(self, prefix: Path) -> None:
        """What the image's pip installs did: the dependencies, then the monitor's wheel."""
        venv.create(prefix, with_pip=False, symlinks=True)
        (site,) = prefix.glob("lib/python*/site-packages")
        # A path in a .pth file is added to sys.path, but the .pth files inside it are not run:
        # the tests' own editable install of this checkout stays out.
        (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        (source,) = self.built
        wheels = prefix.parent / "wheels"
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
        subprocess.run(
            [*pip, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(wheels), str(source)],
            check=True,
            capture_output=True,
        )
        (wheel,) = wheels.glob("*.whl")
        subprocess.run(
            [
                *pip,
                "--python",
                str(prefix / "bin" / "python"),
                "install",
                "--no-deps",
                "--no-index",
                str(wheel),
            ],
            check=True,
            capture_output=True,
        )
        shutil.rmtree(source)  # `rm -rf /build`: the image runs from the wheel alone
        self.site = site

    @staticmethod
    def _copy(context: set[str], source: str, target: Path, into_dir: bool) -> None:
        source = source.rstrip("/")
        assert source in context, (
            f"COPY {source}: not in the build context (missing, or left out by .dockerignore)"
        )
        if (ROOT / source).is_file():
            target = target / Path(source).name if into_dir else target
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / source, target)
            return
        files = [p for p in context if p.startswith(source + "/") and (ROOT / p).is_file()]
        assert files, f"COPY {source}: the folder is empty in the build context"
        for rel in files:
            dest = target / Path(rel).relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest)

    def files(self) -> set[str]:
        return {str(p.relative_to(self.rootfs)) for p in self.rootfs.rglob("*")}

    def resolve(self, argv: list[str]) -> list[str]:
        """A command as the image's PATH finds it."""
        command = self.bin / argv[0]
        assert command.exists(), f"{argv[0]} is not a command of the image"
        return [str(command), *argv[1:]]


class Container:
    """One container's process environment, with the container's names mapped to this test's."""

    def __init__(
        self, image: Image, tmp: Path, env: dict[str, str], service_url: str, target_url: str
    ) -> None:
        self.image = image
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.mapping = [
            (service_url, target_url),
            (image.env["MONITOR_LISTEN"], f"127.0.0.1:{self.port}"),
            ("/data/", f"{tmp}/data/"),
            ("/run/secrets/", f"{tmp}/secrets/"),
            ("/etc/2fauth-monitor/", f"{tmp}/config/"),
        ]
        for sub in ("data", "secrets", "config", "tmp"):
            (tmp / sub).mkdir(exist_ok=True)
        # What Docker gives every process: the image's PATH and LANG, HOME from /etc/passwd.
        base = {
            "PATH": f"{image.bin}:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": "/nonexistent",
            "TMPDIR": str(tmp / "tmp"),
        }
        merged = {**base, **image.env, **env}
        self.env = {k: self.rewrite(v) for k, v in merged.items()}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tmp / "container.log"

    def rewrite(self, value: str) -> str:
        for old, new in self.mapping:
            value = value.replace(old, new)
        return value

    def run(self, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.image.resolve(argv),
            env=self.env,
            cwd=self.image.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, argv: list[str]) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.image.resolve(argv),
                env=self.env,
                cwd=self.image.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def get(self, path: str) -> httpx.Response | None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the container exited with {self.proc.returncode}:\n{self.output()}")
        try:
            return httpx.get(self.url + path, timeout=2)
        except httpx.HTTPError:
            return None

    def first_results(self, instance: str, checks: set[str]) -> dict[str, tuple[str, str]]:
        """{check: (status, message)} of each check's first recorded result, once every check has one."""
        db = Path(self.env["MONITOR_DB"])

        def read() -> dict[str, tuple[str, str]] | None:
            if not db.exists():
                return None
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                rows = conn.execute(
                    'SELECT "check", status, message FROM results WHERE instance = ? ORDER BY started_at DESC',
                    (instance,),
                ).fetchall()
            first = {check: (status, message) for check, status, message in rows}  # the earliest wins
            return first if checks <= set(first) else None

        return wait_for(read, timeout=30, interval=0.3, message=f"a first result of each of {sorted(checks)}")

    def stop(self) -> tuple[int, float]:
        """SIGTERM, as `docker stop` sends it: (exit code, seconds it took)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(DOCKER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"still running {DOCKER_STOP_TIMEOUT}s after SIGTERM: docker would SIGKILL it"
            ) from None
        return code, time.monotonic() - started


def interpolate(value: Any, variables: dict[str, str]) -> str:
    """Compose's ${VAR} and ${VAR:-default}, the only forms the compose files use."""

    def repl(match: re.Match[str]) -> str:
        return variables.get(match.group(1)) or match.group(2) or ""

    text = re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", repl, str(value))
    assert "$" not in text, f"interpolation form not modelled: {value}"
    return text


def write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n")
    path.chmod(0o400)


@pytest.fixture
def image(tmp_path: Path) -> Image:
    return Image(tmp_path / "rootfs")


@pytest.fixture
def container_dir(tmp_path: Path) -> Path:
    where = tmp_path / "container"
    where.mkdir()
    return where


def _assert_runs_like_the_container(
    box: Container, image: Image, instance: str, probes: dict[str, str]
) -> dict[str, tuple[str, str]]:
    """Start the image's CMD; the probes answer 200, the first results are up, SIGTERM is clean."""
    checks = {"live", "ready", "totp"}
    where = box.run(["python", "-c", "import monitor; print(monitor.__file__)"]).stdout.strip()
    assert where == str(image.site / "monitor" / "__init__.py"), f"not the image's wheel: {where}"
    before = image.files()
    box.start(image.cmd)
    try:
        for name, path in probes.items():
            response = wait_for(lambda p=path: box.get(p), timeout=30, message=f"{name} {path} to answer")
            assert response.status_code == 200, f"{name} {path}: {response.status_code} {response.text}"
        first = box.first_results(instance, checks)
        assert {c: status for c, (status, _) in first.items()} == dict.fromkeys(checks, "up"), first
        page = box.get("/")
        assert page is not None and page.status_code == 200 and "text/html" in page.headers["content-type"]
        health = box.run(image.healthcheck, timeout=10)
        assert health.returncode == 0, health.stdout + health.stderr
    finally:
        code, seconds = box.stop()
    assert code == 0, box.output()
    assert image.files() == before, "the container wrote into its read-only root filesystem"
    health = box.run(image.healthcheck, timeout=10)
    assert health.returncode != 0 and "/live" in health.stderr, "the health check must fail once stopped"
    with sqlite3.connect(box.env["MONITOR_DB"]) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    for secret in (simulator.DEFAULT_TOKEN, simulator.DEFAULT_CANARY_SECRET):
        assert secret not in box.output()
    return first


def test_compose_monitor_service_runs_as_its_container_would(sim: Any, image: Image, container_dir: Path):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["monitor"]
    assert service["depends_on"]["2fauth"]["condition"] == "service_healthy"
    # The variables a user puts in .env beside the compose file.
    dotenv = {"CANARY_ACCOUNT_ID": str(simulator.CANARY_ACCOUNT_ID)}
    env = {k: interpolate(v, dotenv) for k, v in service["environment"].items()}
    box = Container(image, container_dir, env, env["TWOFAUTH_URL"], sim.url)
    values = {"twofauth_token": simulator.DEFAULT_TOKEN, "canary_secret": simulator.DEFAULT_CANARY_SECRET}
    for name in service["secrets"]:
        assert compose["secrets"][name]["file"].startswith("./secrets/")
        write_secret(Path(box.rewrite(f"/run/secrets/{name}")), values[name])

    # 2FAuth's health check, as the compose file gives it, answers on (simulated) 2FAuth.
    probe = compose["services"]["2fauth"]["healthcheck"]["test"]
    url = next(a for a in probe if a.startswith("http://"))
    assert httpx.get(url.replace("http://127.0.0.1:8000", sim.url), timeout=5).status_code == 200

    first = _assert_runs_like_the_container(box, image, "2fauth", {"live": "/live", "ready": "/ready"})
    # CANARY_ACCOUNT_ID came through the compose interpolation: the stored canary was read too.
    assert f"stored account {simulator.CANARY_ACCOUNT_ID} deciphers" in first["totp"][1]


def test_kubernetes_pod_runs_as_the_deployment_describes(sim: Any, image: Image, container_dir: Path):
    docs = {d["kind"]: d for p in KUBE.glob("*.yaml") for d in yaml.safe_load_all(p.read_text())}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (spec,) = pod["containers"]
    assert "command" not in spec and "args" not in spec, "the pod runs the image's CMD"
    env = {e["name"]: e["value"] for e in spec.get("env", [])}
    config_text = docs["ConfigMap"]["data"]["monitor.yaml"]
    (instance,) = yaml.safe_load(config_text)["instances"]
    box = Container(image, container_dir, env, instance["url"], sim.url)
    mounts = {m["name"]: m["mountPath"] for m in spec["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for name, volume in volumes.items():
        where = Path(box.rewrite(mounts[name] + "/"))
        where.mkdir(parents=True, exist_ok=True)
        if "configMap" in volume:
            for key, text in docs["ConfigMap"]["data"].items():
                (where / key).write_text(box.rewrite(text))
        elif "secret" in volume:
            values = {"token": simulator.DEFAULT_TOKEN, "canary_secret": simulator.DEFAULT_CANARY_SECRET}
            for key in docs["Secret"]["stringData"]:
                write_secret(where / key, values[key])
    probes = {
        name: spec[name]["httpGet"]["path"] for name in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    _assert_runs_like_the_container(box, image, instance["name"], probes)


def test_remote_compose_example_checks_each_instance(sim: Any, image: Image, container_dir: Path):
    compose = yaml.safe_load((ROOT / "docker-compose.remote.yml").read_text())
    service = compose["services"]["monitor"]
    env_example = ROOT / "deploy" / "remote.env.example"
    assert service["env_file"] == str(env_example.relative_to(ROOT)).removesuffix(".example")
    filled = {
        "TOKEN": simulator.DEFAULT_TOKEN,
        "CANARY_SECRET": simulator.DEFAULT_CANARY_SECRET,
        "CANARY_ACCOUNT_ID": str(simulator.CANARY_ACCOUNT_ID),
    }
    env = {}
    for line in env_example.read_text().splitlines():
        if line and not line.startswith("#"):
            key = line.partition("=")[0]
            env[key] = next(v for suffix, v in filled.items() if key.endswith("_" + suffix))
    env.update(service["environment"])
    config_path = ROOT / "deploy" / "monitor.remote.yaml"
    mount = next(v for v in service["volumes"] if v.startswith("./deploy/"))
    assert mount.split(":")[:2] == [f"./{config_path.relative_to(ROOT)}", env["MONITOR_CONFIG"]]
    box = Container(image, container_dir, env, "https://2fauth.example.com", sim.url_for("home"))
    config = yaml.safe_load(config_path.read_text())
    text = config_path.read_text()
    for inst in config["instances"]:
        text = text.replace(f"url: {inst['url']}\n", f"url: {sim.url_for(inst['name'])}\n")
    Path(box.rewrite(env["MONITOR_CONFIG"])).write_text(text)

    out = box.run([image.cmd[0], "check", "--json"])
    assert out.returncode == 0, out.stdout + out.stderr
    results = {(r["instance"], r["check"]): r["status"] for r in json.loads(out.stdout)["results"]}
    expected = {(i["name"], c) for i in config["instances"] for c in ("live", "ready", "totp")}
    expected -= {("family", "ready"), ("family", "totp")}  # watched without a token: /up only
    assert results == dict.fromkeys(expected, "up")
    for secret in (simulator.DEFAULT_TOKEN, simulator.DEFAULT_CANARY_SECRET):
        assert secret not in out.stdout + out.stderr
