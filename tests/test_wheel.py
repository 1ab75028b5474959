"""A regular install works: the wheel carries the templates, and `run` serves the status page from a
fresh virtual environment outside the checkout, where nothing of the source tree can be found."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import httpx
import yaml

from tests.conftest import free_port, instance_config, wait_for

ROOT = Path(__file__).resolve().parent.parent


def _build_wheel(out: Path) -> tuple[Path, str]:
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            ".",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = out.glob("2fauth_monitor-*.whl")
    return wheel, build.stdout + build.stderr


def test_wheel_builds_without_warnings_and_ships_the_templates(tmp_path: Path):
    wheel, output = _build_wheel(tmp_path)
    # pip's own index notices are not the build's; the build backend's warnings would be
    build_lines = [line for line in output.splitlines() if "Location '" not in line]
    assert not [line for line in build_lines if "warning" in line.lower()], output
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {p.relative_to(ROOT).as_posix() for p in (ROOT / "templates").iterdir()}
    assert {f"monitor/{t}" for t in templates} <= names, sorted(names)
    assert "monitor/static/style.css" in names
    assert not any(n.startswith(("tests/", "bench/", "deploy/")) for n in names)


def test_installed_wheel_serves_the_status_page_outside_the_checkout(tmp_path: Path, sim):
    wheel, _ = _build_wheel(tmp_path / "dist")
    prefix = tmp_path / "venv"
    venv.create(prefix, with_pip=False, symlinks=True)
    (site,) = prefix.glob("lib/python*/site-packages")
    # the dependencies the tests installed, but not the .pth files inside them: the checkout's
    # editable install stays out, so only the wheel can provide `monitor`
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(prefix / "bin" / "python"),
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert install.returncode == 0, install.stdout + install.stderr

    work = tmp_path / "elsewhere"
    work.mkdir()
    config = work / "monitor.yaml"
    config.write_text(
        yaml.safe_dump({"instances": [instance_config(sim.url)], "storage": {"path": str(work / "m.db")}})
    )
    port = free_port()
    env = {
        "PATH": f"{prefix / 'bin'}:/usr/bin:/bin",
        "HOME": str(work),
        "MONITOR_LISTEN": f"127.0.0.1:{port}",
    }
    where = subprocess.run(
        [str(prefix / "bin" / "python"), "-c", "import monitor; print(monitor.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where == str(site / "monitor" / "__init__.py"), where
    log = (work / "run.log").open("wb")
    proc = subprocess.Popen(
        [str(prefix / "bin" / "2fauth-monitor"), "run", "--config", str(config)],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def page() -> httpx.Response | None:
            assert proc.poll() is None, (work / "run.log").read_text()
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
            except httpx.HTTPError:
                return None
            return response if response.status_code == 200 else None

        response = wait_for(page, timeout=30, message="the status page from the wheel")
        assert "home" in response.text and "text/html" in response.headers["content-type"]
        assert httpx.get(f"http://127.0.0.1:{port}/static/style.css", timeout=2).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        log.close()
    assert "TemplateNotFound" not in (work / "run.log").read_text()
    assert not os.path.exists(site / "templates")  # inside the package, not loose in site-packages
