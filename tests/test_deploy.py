"""The deployment files: validated offline, consistent with each other, free of secrets.

The runs of the container and the pod themselves are in tests/test_deploy_run.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
REMOTE = ROOT / "docker-compose.remote.yml"
KUBE = ROOT / "deploy" / "kubernetes"
LOCK = ROOT / "requirements.lock"
KUBE_VERSIONS = ("1.37.0", "1.30.0")  # the newest schemas kubernetes-validate ships, and an older cluster


def tool(name: str) -> str:
    """A validator from the `test` extra; a missing one fails the test, never skips it."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed in {BIN}: run .venv/bin/pip install -e '.[test]'")
    return str(path)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT)


def manifests() -> list[Path]:
    return sorted(p for p in KUBE.glob("*.yaml") if p.name != "kustomization.yaml")


def kube_objects() -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> object, over every manifest including the Secret example."""
    out = {}
    for path in manifests():
        for doc in yaml.safe_load_all(path.read_text()):
            out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


def deployment() -> dict[str, Any]:
    return next(o for (kind, _), o in kube_objects().items() if kind == "Deployment")


def image_env() -> dict[str, str]:
    return DockerfileParser(path=str(DOCKERFILE)).envs


# --- the validators of .ci/validate-deploy ---------------------------------------------------------


@pytest.mark.parametrize("compose", [COMPOSE, REMOTE], ids=lambda p: p.name)
def test_compose_file_follows_the_compose_specification(compose: Path):
    out = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(compose))
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_has_no_hadolint_finding():
    out = run(tool("hadolint"), "--failure-threshold", "style", str(DOCKERFILE))
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_kubernetes_manifests_match_the_schemas_offline(version: str):
    files = [str(p) for p in manifests()]
    out = run(tool("kubernetes-validate"), "--strict", "--kubernetes-version", version, *files)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("passed") == len(files), out.stdout  # each file was really checked


def test_each_validator_rejects_a_one_line_mistake(tmp_path: Path):
    """A validator that accepted anything would pass the three tests above."""
    compose = yaml.safe_load(COMPOSE.read_text())
    compose["services"]["monitor"]["depends_on"]["2fauth"]["condition"] = "healthy"
    (tmp_path / "compose.yml").write_text(yaml.safe_dump(compose))
    out = run(
        tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(tmp_path / "compose.yml")
    )
    assert out.returncode != 0 and "healthy" in out.stdout

    (tmp_path / "Dockerfile").write_text(DOCKERFILE.read_text() + "RUN cd /app && pip install httpx\n")
    out = run(tool("hadolint"), str(tmp_path / "Dockerfile"))
    assert out.returncode != 0 and "DL3003" in out.stdout

    broken = deployment()
    broken["spec"]["replicas"] = "one"
    (tmp_path / "deployment.yaml").write_text(yaml.safe_dump(broken))
    out = run(tool("kubernetes-validate"), "--strict", str(tmp_path / "deployment.yaml"))
    assert out.returncode != 0 and "replicas" in out.stdout


def test_ci_script_runs_the_same_validations():
    script = ROOT / ".ci" / "validate-deploy"
    assert script.stat().st_mode & 0o111, ".ci/validate-deploy must be executable"
    env = {**os.environ, "PYTHON": sys.executable}
    out = subprocess.run([str(script)], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("ok --") == 2 + len(KUBE_VERSIONS), out.stdout


# --- Kubernetes: what the schemas cannot see ---------------------------------------------------------

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
QUANTITY = re.compile(r"^(\d+(\.\d+)?)(m|Ki|Mi|Gi)?$")


def quantity(text: str) -> float:
    match = QUANTITY.match(str(text))
    assert match, f"{text!r} is not a Kubernetes quantity such as 100m, 64Mi or 1Gi"
    scale = {"m": 0.001, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, None: 1}[match.group(3)]
    return float(match.group(1)) * scale


def test_kustomization_applies_every_manifest_but_the_secret_example():
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    listed = kustomization["resources"]
    for name in listed:
        assert (KUBE / name).is_file(), f"kustomization.yaml lists {name}, which does not exist"
    expected = {p.name for p in manifests()} - {"secret.example.yaml"}
    assert set(listed) == expected, "every manifest but the Secret example belongs in resources"
    images = {i["name"] for i in kustomization.get("images", [])}
    assert {c["image"] for c in deployment()["spec"]["template"]["spec"]["containers"]} <= images


def test_kubernetes_objects_reference_each_other_and_accept_their_names():
    objects = kube_objects()
    for kind, name in objects:
        pattern = DNS1035_LABEL if kind == "Service" else DNS1123_LABEL
        assert pattern.match(name), f"{kind} {name}: the API server refuses this name"
    pod = deployment()["spec"]["template"]
    spec = pod["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert ("ConfigMap", volumes["config"]["configMap"]["name"]) in objects
    assert ("PersistentVolumeClaim", volumes["data"]["persistentVolumeClaim"]["claimName"]) in objects
    assert ("Secret", volumes["secrets"]["secret"]["secretName"]) in objects
    service = next(o for (kind, _), o in objects.items() if kind == "Service")
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (container,) = spec["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert all(p["targetPort"] in ports for p in service["spec"]["ports"])
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in ports, probe
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/live"


def test_pod_is_locked_down_and_sized():
    spec = deployment()["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    security = container["securityContext"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    uid = DockerfileParser(path=str(DOCKERFILE)).structure
    user = next(i["value"] for i in reversed(uid) if i["instruction"] == "USER")
    assert spec["securityContext"]["runAsUser"] == int(user.split(":")[0])
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    # With a read-only root, the database and /tmp must be volumes.
    assert str(Path(image_env()["MONITOR_DB"]).parent) in mounts and "/tmp" in mounts
    resources = container["resources"]
    for key in ("cpu", "memory"):
        assert quantity(resources["limits"][key]) >= quantity(resources["requests"][key]), key
    assert quantity(resources["limits"]["memory"]) >= 64 * 2**20


# --- one port, one data path, across the files --------------------------------------------------------


def test_every_file_agrees_on_the_port_and_the_data_volume():
    parser = DockerfileParser(path=str(DOCKERFILE))
    port = int(parser.envs["MONITOR_LISTEN"].rpartition(":")[2])
    data = str(Path(parser.envs["MONITOR_DB"]).parent)
    exposed = [i["value"] for i in parser.structure if i["instruction"] == "EXPOSE"]
    assert exposed == [f"{port}/tcp"]
    volumes = [i["value"] for i in parser.structure if i["instruction"] == "VOLUME"]
    assert volumes == [f'["{data}"]']
    healthcheck = next(i["value"] for i in parser.structure if i["instruction"] == "HEALTHCHECK")
    assert "MONITOR_LISTEN" in healthcheck and "/live" in healthcheck
    for compose in (COMPOSE, REMOTE):
        service = yaml.safe_load(compose.read_text())["services"]["monitor"]
        assert any(p.split(":")[-1] == f"{port}/tcp" for p in service["ports"]), compose.name
        assert any(v.endswith(f":{data}") for v in service["volumes"]), compose.name
    (container,) = deployment()["spec"]["template"]["spec"]["containers"]
    assert [p["containerPort"] for p in container["ports"]] == [port]


def test_image_labels_follow_oci_and_carry_the_package_version():
    labels = DockerfileParser(path=str(DOCKERFILE)).labels
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert labels["org.opencontainers.image.version"] == version
    for key in ("title", "description", "licenses", "revision", "created", "base.name"):
        assert f"org.opencontainers.image.{key}" in labels


# --- the pinned dependencies of the image ---------------------------------------------------------------


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_lock_pins_every_runtime_dependency_at_the_tested_version():
    pins = _pins()
    stale = "; refresh it with deploy/refresh-lock"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [Requirement(r) for r in project["dependencies"]]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        if name == "pip":  # provided by the base image; see deploy/refresh-lock
            continue
        assert name in pins, f"requirements.lock lacks {req.name}{stale}"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req} but the lock pins {pins[name]}"
        installed = metadata.version(req.name)
        assert pins[name] == installed, (
            f"the lock pins {name}=={pins[name]}, the tests run {installed}{stale}"
        )
        todo.extend(Requirement(r) for r in metadata.requires(req.name) or [])
    assert set(pins) <= seen, (
        f"requirements.lock pins packages nothing needs: {sorted(set(pins) - seen)}{stale}"
    )


def test_image_python_is_the_one_the_lock_was_resolved_for():
    base = DockerfileParser(path=str(DOCKERFILE)).baseimage
    match = re.match(r"python:(\d+)\.(\d+)", base)
    assert match, f"the base image {base} is not an official python image with a version tag"
    assert (int(match.group(1)), int(match.group(2))) == sys.version_info[:2]
    assert f"Python {sys.version_info[0]}.{sys.version_info[1]} " in LOCK.read_text()


# --- no secret in any committed deployment file ------------------------------------------------------------

SECRET_KEYS = ("TWOFAUTH_TOKEN", "CANARY_SECRET")


def deployment_files() -> list[Path]:
    return [
        DOCKERFILE,
        COMPOSE,
        REMOTE,
        *sorted((ROOT / "deploy").rglob("*")),
    ]


def test_no_secret_is_written_in_the_deployment_files():
    from monitor import simulator

    for compose in (COMPOSE, REMOTE):
        for service in yaml.safe_load(compose.read_text())["services"].values():
            env = service.get("environment") or {}
            assert isinstance(env, dict), f"{compose.name}: environment as a mapping, please"
            assert not set(env) & set(SECRET_KEYS), f"{compose.name}: secrets belong in files, not here"
    config = yaml.safe_load(kube_objects()[("ConfigMap", "twofauth-monitor")]["data"]["monitor.yaml"])
    for inst in config["instances"]:
        assert "token" not in inst and "canary_secret" not in inst["checks"]["totp"]
    secret = kube_objects()[("Secret", "twofauth-monitor")]
    assert all(v.startswith("REPLACE-") for v in secret["stringData"].values())
    env_example = (ROOT / "deploy" / "remote.env.example").read_text()
    assert all(line.endswith("=") for line in env_example.splitlines() if line and not line.startswith("#"))
    for path in deployment_files():
        if path.is_file():
            text = path.read_text(errors="replace")
            for value in (simulator.DEFAULT_TOKEN, simulator.DEFAULT_CANARY_SECRET):
                assert value not in text, f"{path.relative_to(ROOT)} holds a real-looking secret"
            assert not re.search(r"eyJ[\w-]{10,}\.", text), f"{path.relative_to(ROOT)} holds a JWT"


def test_every_compose_variable_is_documented():
    guide = (ROOT / "docs" / "deployment.md").read_text()
    for compose in (COMPOSE, REMOTE):
        for name in re.findall(r"\$\{(\w+)", json.dumps(yaml.safe_load(compose.read_text()))):
            assert f"| `{name}` |" in guide, (
                f"{compose.name} reads ${{{name}}}: document it in docs/deployment.md"
            )
