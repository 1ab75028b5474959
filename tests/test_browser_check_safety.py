"""The browser check's safety in real headless Chromium, against a loopback server that never
answers: its timeout kills the whole process tree, its memory bound holds, one browser runs at a
time across instances, and the password stays out of every process's argv and environment."""

from __future__ import annotations

import asyncio
import http.server
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from monitor import config
from monitor.checks import make_context, run_check
from monitor.checks.browser_process import Child, process_tree

pytestmark = pytest.mark.browser

PASSWORD = "browser-safety-pw-81f3"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A loopback server that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def instances(url: str, n: int = 1, instance_timeout: str = "10s", **browser) -> list:
    checks = {"browser": {"email": "m@example.com", "password": PASSWORD, "timeout": "3s", **browser}}
    raw = {
        "instances": [
            {"name": f"i{i}", "url": url, "timeout": instance_timeout, "checks": checks} for i in range(n)
        ]
    }
    return config.from_mapping(raw, env={}).instances


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def test_the_journey_timeout_is_a_timeout_and_leaves_no_process(silent_url, tmp_path):
    # the browser's own timeout (3 s) applies, not the instance's (1 s, meant for one request)
    inst = instances(silent_url, instance_timeout="1s")[0]
    ctx = make_context(inst, artifacts=tmp_path / "shots")
    before = set(process_tree(os.getpid()))  # other tests' servers may be children of pytest too
    started = time.monotonic()
    try:
        result = await run_check(ctx, "browser")
    finally:
        await ctx.aclose()
    took = time.monotonic() - started
    assert (result.status, result.kind) == ("down", "timeout"), result.message
    assert result.message == "step 'load' did not complete within 3s"
    assert [s.name for s in result.steps] == ["load"]
    assert took < 12, took
    assert not [p for p in set(process_tree(os.getpid())) - before if alive(p)]  # Chromium is gone too
    assert not list((tmp_path / "shots").glob(".*.part.png"))  # no half-written screenshot is left


async def test_a_child_past_its_deadline_is_killed_with_chromium_and_never_sees_the_password(silent_url):
    job = {
        "url": silent_url,
        "email": "m@example.com",
        "password": PASSWORD,
        "chromium": "/usr/bin/chromium",
        "budget": 60,  # the child would wait a minute; the parent gives it 3 s
        "account_id": None,
        "screenshot": None,
        "js_heap_mb": 256,
    }
    child = Child(job, deadline=3.0, max_memory_mb=4000, grace=0.0)
    task = asyncio.create_task(child.run())
    seen: dict[int, bytes] = {}
    while not task.done():
        if child.proc is not None:
            for pid in process_tree(child.proc.pid):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as a, open(f"/proc/{pid}/environ", "rb") as e:
                        seen[pid] = a.read() + e.read()
                except OSError:
                    pass
        await asyncio.sleep(0.2)
    outcome = await task
    assert outcome.killed_for == "timeout" and outcome.final is None
    assert any(b"chromium" in text for text in seen.values()), "Chromium had started"
    assert not [pid for pid in seen if alive(pid)]
    assert all(PASSWORD.encode() not in text for text in seen.values())
    assert all(b"TWOFAUTH" not in text for text in seen.values())  # the child's environment is bare


async def test_the_memory_bound_stops_the_browser(silent_url):
    inst = instances(silent_url, max_memory_mb=300, timeout="20s")[0]
    ctx = make_context(inst)
    try:
        result = await run_check(ctx, "browser")
    finally:
        await ctx.aclose()
    assert (result.status, result.kind) == ("down", "frontend"), result.message
    assert result.message.startswith("the browser used more than 300 MB (checks.browser.max_memory_mb)")
    assert result.latency_ms is not None and result.latency_ms < 20_000


async def test_one_browser_at_a_time_across_instances(silent_url):
    insts = instances(silent_url, 2, timeout="2s")
    ctxs = [make_context(i) for i in insts]
    try:
        results = await asyncio.gather(*(run_check(c, "browser") for c in ctxs))
    finally:
        for c in ctxs:
            await c.aclose()
    assert [r.kind for r in results] == ["timeout", "timeout"]
    first, second = sorted(results, key=lambda r: r.started_at)
    assert second.started_at >= first.started_at + 2.0  # the second waited for the first's browser
    assert all(r.latency_ms < 10_000 for r in results)  # the wait is not counted as the journey


async def test_a_chromium_that_does_not_start_or_is_missing_is_config(silent_url, tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\necho 'not a browser' >&2\nexit 3\n")
    fake.chmod(0o755)
    for path, words in ((fake, f"Chromium ({fake}) did not start: "), (tmp_path / "gone", "no Chromium at ")):
        inst = instances(silent_url, chromium=str(path))[0]
        ctx = make_context(inst)
        try:
            result = await run_check(ctx, "browser")
        finally:
            await ctx.aclose()
        assert (result.status, result.kind) == ("degraded", "config"), result.message
        assert result.message.startswith(words), result.message


class BrokenApp(http.server.BaseHTTPRequestHandler):
    """A web app whose stylesheet is missing and whose script throws: nothing renders."""

    def do_GET(self) -> None:
        if self.path == "/":
            body = b'<html><head><link rel="stylesheet" href="/app.css"></head><body><div id="app"></div><script>throw new Error("boom from the app")</script></body></html>'
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
        else:
            body = b"not found"
            self.send_response(404)
            self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


async def test_a_script_error_and_a_missing_stylesheet_are_frontend_naming_both():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), BrokenApp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        inst = instances(f"http://127.0.0.1:{server.server_address[1]}", timeout="20s")[0]
        ctx = make_context(inst)
        try:
            result = await run_check(ctx, "browser")
        finally:
            await ctx.aclose()
    finally:
        server.shutdown()
    assert (result.status, result.kind) == ("down", "frontend"), result.message
    assert result.message.startswith("the web app did not render its sign-in form: "), result.message
    assert "the stylesheet /app.css failed to load (HTTP 404)" in result.message
    assert "JavaScript error: boom from the app" in result.message
    assert result.latency_ms < 10_000  # it gives up soon after the failures, not at the timeout
