"""Push targets (Uptime Kuma, Healthchecks, Gatus) and the heartbeat: each format exactly as the
receivers expect it, down then up again against the simulator, a receiver that is down or slow never
delaying a check, the heartbeat failing over to /fail when the database cannot be written, and no
push URL or token anywhere a user or an attacker could read it."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from monitor import config
from monitor.models import Kind, Result, Status

from .conftest import instance_config, wait_for
from .receiver import Receiver

KUMA_TOKEN = "AbCdEf123kuma"
HC_UUID = "5b2c0e1a-hc-uuid-77d1"
GATUS_TOKEN = "gatus-bearer-9e4f21"
HEARTBEAT_UUID = "9f1e77aa-heartbeat"


def calls(receiver: Receiver) -> list[tuple[str, str, dict[str, str], bytes]]:
    """(method, path with query, headers in lower case, body) of every request received."""
    with receiver.lock:
        return [(r["method"], r["path"], r["headers"], r["body"]) for r in receiver.requests]


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def push_config(receiver: Receiver, **extra) -> list[dict]:
    return [
        {"type": "uptime_kuma", "url": f"{receiver.url}/api/push/{KUMA_TOKEN}", "instance": "home", **extra},
        {"type": "healthchecks", "url": f"{receiver.url}/ping/{HC_UUID}", "instance": "home", **extra},
        {
            "type": "gatus",
            "url": receiver.url,
            "key": "twofauth_home",
            "token": "${GATUS_TOKEN}",
            "instance": "home",
            **extra,
        },
    ]


def calls_to(receiver: Receiver, prefix: str) -> list[tuple[str, str, dict[str, str], bytes]]:
    return [c for c in calls(receiver) if urlsplit(c[1]).path.startswith(prefix)]


def query(path: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(path).query, keep_blank_values=True)


def test_push_formats_down_then_up(sim, receiver, write_config, start_monitor, tmp_path):
    """Each target's exact format; a wrong-code outage pushed as down, the recovery as up; and none
    of the push URLs or the Gatus token in the log, the database, the pages or the metrics."""
    inst = instance_config(sim.url, interval="2s", timeout="2s")
    path = write_config({"instances": [inst], "push": push_config(receiver)})
    mon = start_monitor(path, env={"GATUS_TOKEN": GATUS_TOKEN})

    def latest(prefix: str):
        found = calls_to(receiver, prefix)
        return found[-1] if found else None

    # up first, on all three
    kuma = wait_for(lambda: latest("/api/push/"), message="a Kuma push")
    assert kuma[0] == "GET" and urlsplit(kuma[1]).path == f"/api/push/{KUMA_TOKEN}"
    q = query(kuma[1])
    assert set(q) == {"status", "msg", "ping"}
    assert q["status"] == ["up"] and q["msg"][0].startswith("up: ") and q["ping"][0].isdigit()
    hc = wait_for(lambda: latest(f"/ping/{HC_UUID}"), message="a Healthchecks ping")
    assert hc[0] == "POST" and hc[1] == f"/ping/{HC_UUID}" and hc[3].startswith(b"up: ")
    gatus = wait_for(lambda: latest("/api/v1/endpoints/"), message="a Gatus push")
    assert gatus[0] == "POST" and urlsplit(gatus[1]).path == "/api/v1/endpoints/twofauth_home/external"
    q = query(gatus[1])
    assert q["success"] == ["true"] and q["error"] == [""] and q["duration"][0].endswith("ms")
    assert int(q["duration"][0].removesuffix("ms")) >= 0
    assert gatus[2]["authorization"] == f"Bearer {GATUS_TOKEN}"

    # a TOTP outage: down, naming the check
    sim.set_faults(["wrong_codes"])
    kuma_down = wait_for(
        lambda: (c := latest("/api/push/")) and query(c[1])["status"] == ["down"] and c, message="Kuma down"
    )
    assert "totp" in query(kuma_down[1])["msg"][0]
    hc_down = wait_for(lambda: latest(f"/ping/{HC_UUID}/fail"), message="Healthchecks /fail")
    assert hc_down[0] == "POST" and hc_down[3].startswith(b"down: totp")
    gatus_down = wait_for(
        lambda: (c := latest("/api/v1/endpoints/")) and query(c[1])["success"] == ["false"] and c,
        message="Gatus down",
    )
    assert "totp" in query(gatus_down[1])["error"][0]

    # recovery: up again
    sim.set_faults([])
    wait_for(lambda: query(latest("/api/push/")[1])["status"] == ["up"], message="Kuma up again")
    wait_for(lambda: latest(f"/ping/{HC_UUID}")[1] == f"/ping/{HC_UUID}", message="Healthchecks up again")
    wait_for(lambda: query(latest("/api/v1/endpoints/")[1])["success"] == ["true"], message="Gatus up again")

    outputs = []
    for page in ("/", "/instances/home", "/api/v1/status", "/metrics", "/ready", "/feed.atom"):
        outputs.append(httpx.get(mon.url + page).text)
    mon.stop()
    outputs.append(mon.output())
    blobs = ["\n".join(outputs).encode()] + [p.read_bytes() for p in tmp_path.glob("monitor.db*")]
    for secret in (KUMA_TOKEN, HC_UUID, GATUS_TOKEN):
        for blob in blobs:
            i = blob.find(secret.encode())
            assert i < 0, f"{secret} leaked: {blob[max(0, i - 200) : i + 40]!r}"


def test_a_down_or_slow_push_receiver_never_delays_checks(sim, write_config, start_monitor, tmp_path):
    """One target refusing connections, one answering after 20 s: checks every second go on."""
    slow = Receiver()
    slow.hang = True  # holds each answer until stopped
    try:
        inst = instance_config(sim.url, token=False, interval="1s", timeout="1s")
        inst["checks"] = {"ready": {"enabled": False}}
        db = tmp_path / "monitor.db"
        path = write_config(
            {
                "storage": {"path": str(db)},
                "instances": [inst],
                "push": [
                    {
                        "type": "uptime_kuma",
                        "url": f"{closed_port_url()}/api/push/{KUMA_TOKEN}",
                        "instance": "home",
                    },
                    {
                        "type": "healthchecks",
                        "url": f"{slow.url}/ping/{HC_UUID}",
                        "instance": "home",
                        "timeout": "30s",
                    },
                ],
            }
        )
        mon = start_monitor(path)
        wait_for(lambda: db.exists() and count_results(db) >= 1, message="a first result")
        time.sleep(8)
        started = [r[0] for r in sqlite_rows(db, "select started_at from results order by started_at")]
        gaps = [b - a for a, b in zip(started, started[1:])]
        assert len(started) >= 6, f"only {len(started)} checks in 8 s"
        assert max(gaps) < 2.5, f"a check waited {max(gaps):.1f}s"
        output = mon.output()
        assert "push 1 (uptime_kuma, home) failed" in output
        assert KUMA_TOKEN not in output and HC_UUID not in output
    finally:
        slow.stop()


def count_results(db: Path) -> int:
    return sqlite_rows(db, "select count(*) from results")[0][0]


def sqlite_rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def result(check: str, status: Status = Status.UP, **kw) -> Result:
    return Result("home", check, status, latency_ms=kw.pop("latency_ms", 12.0), **kw)


def settings_for(receiver: Receiver, push: list[dict]) -> config.Settings:
    inst = {"name": "home", "url": "http://127.0.0.1:9", "token": "t" * 20, "interval": "10s"}
    inst["checks"] = {"totp": {"canary_secret": "JBSWY3DPEHPK3PXP"}}
    return config.from_mapping({"instances": [inst], "push": push}, env={"GATUS_TOKEN": GATUS_TOKEN})


def test_one_round_of_checks_makes_one_push_and_a_check_target_only_its_check(receiver):
    from monitor.push import Pusher

    settings = settings_for(
        receiver,
        [
            {"type": "uptime_kuma", "url": f"{receiver.url}/api/push/whole", "instance": "home"},
            {
                "type": "uptime_kuma",
                "url": f"{receiver.url}/api/push/totp",
                "instance": "home",
                "check": "totp",
            },
        ],
    )

    async def scenario() -> None:
        latest: dict = {}
        pusher = Pusher(settings, latest)
        await pusher.start()
        try:
            for r in (
                result("live"),
                result("ready", Status.DEGRADED, kind=Kind.NOT_READY, message="queue: warn"),
                result("totp", latency_ms=40.0),
            ):
                latest[(r.instance, r.check)] = r
                pusher.listener(r, None, False)
                await asyncio.sleep(0.1)
            await wait_async(lambda: len(receiver.requests) >= 2)
            await asyncio.sleep(1.5)  # no second push for the same round
        finally:
            await pusher.stop()

    asyncio.run(scenario())
    paths = sorted(c[1] for c in calls(receiver))
    assert len(paths) == 2, paths
    whole = query(next(p for p in paths if p.startswith("/api/push/whole")))
    assert (
        whole["status"] == ["up"]
        and whole["msg"][0].startswith("degraded: ready")
        and whole["ping"] == ["40"]
    )
    only = query(next(p for p in paths if p.startswith("/api/push/totp")))
    assert only["status"] == ["up"] and only["msg"] == ["up: totp"]


def test_a_failed_push_is_retried_within_the_interval(receiver):
    from monitor.push import Pusher

    receiver.status = 503  # two attempts answered 503, then accepted
    settings = settings_for(
        receiver, [{"type": "healthchecks", "url": f"{receiver.url}/ping/x", "instance": "home"}]
    )

    async def scenario() -> None:
        latest = {("home", "live"): result("live", Status.DOWN, kind=Kind.CONNECT, message="refused")}
        pusher = Pusher(settings, latest)
        await pusher.start()
        try:
            pusher.listener(latest[("home", "live")], None, False)
            await wait_async(lambda: len(receiver.requests) >= 2, timeout=9)
            receiver.status = 200
            await wait_async(lambda: len(receiver.requests) >= 3, timeout=9)
            await asyncio.sleep(1.5)  # delivered: no further attempt
        finally:
            await pusher.stop()

    asyncio.run(scenario())
    got = calls(receiver)
    assert [(c[0], c[1]) for c in got] == [("POST", "/ping/x/fail")] * 3
    assert {c[3] for c in got} == {b"down: live (connect: refused)"}


def test_a_redirect_is_not_followed(receiver):
    from monitor.push import PushError, send_once

    other = Receiver()

    async def scenario() -> None:
        async with httpx.AsyncClient(follow_redirects=False) as client:
            with pytest.raises(PushError, match="redirect"):
                await send_once(client, "GET", redirecting.url + "/x", {}, b"", 2)

    redirecting = RedirectServer(other.url)
    try:
        asyncio.run(scenario())
        assert other.requests == []
    finally:
        redirecting.close()
        other.stop()


class RedirectServer:
    def __init__(self, to: str) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(302)
                self.send_header("Location", to + "/stolen")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def wait_async(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


# --- heartbeat --------------------------------------------------------------------------------


def test_heartbeat_pings_while_healthy_and_fails_when_the_database_is_read_only(
    sim, receiver, write_config, start_monitor, tmp_path
):
    db = tmp_path / "monitor.db"
    inst = instance_config(sim.url, token=False, interval="1s", timeout="1s")
    inst["checks"] = {"ready": {"enabled": False}}
    path = write_config(
        {
            "storage": {"path": str(db)},
            "instances": [inst],
            "heartbeat": {"url": f"{receiver.url}/hb/{HEARTBEAT_UUID}", "interval": "1s"},
        }
    )
    mon = start_monitor(path)
    ok = f"/hb/{HEARTBEAT_UUID}"
    wait_for(lambda: [c for c in calls(receiver) if c[1] == ok][2:], message="three pings")
    assert all(c[0] == "GET" for c in calls(receiver))
    assert not [c for c in calls(receiver) if c[1] == ok + "/fail"]
    wait_for(lambda: count_results(db) >= 2, message="first results")
    files = [str(db), f"{db}-wal"]
    if subprocess.run(["chattr", "+i", *files], capture_output=True).returncode != 0:
        pytest.skip("this filesystem has no immutable flag")
    try:
        wait_for(lambda: calls(receiver)[-1][1] == ok + "/fail", timeout=15, message="the heartbeat's /fail")
        assert calls(receiver)[-1][0] == "GET"
    finally:
        subprocess.run(["chattr", "-i", *files], capture_output=True)
    wait_for(lambda: calls(receiver)[-1][1] == ok, timeout=15, message="pings again once writable")
    mon.stop()
    output = mon.output()
    assert "heartbeat: reporting failure (database not writable)" in output
    assert HEARTBEAT_UUID not in output


def test_heartbeat_reports_overdue_checks():
    """The monitor's own readiness: overdue checks fail it as /ready does."""
    from monitor.heartbeat import readiness
    from monitor.scheduler import Monitor

    inst = {"name": "home", "url": "http://127.0.0.1:9", "interval": "10s"}
    monitor = Monitor(config.from_mapping({"instances": [inst]}), None)
    monitor.stats.last_run_monotonic = time.monotonic()
    assert readiness(monitor) is None
    monitor.stats.last_run_monotonic = time.monotonic() - 3600
    assert readiness(monitor) == "checks overdue"


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("push", "expected"),
    [
        (
            {"type": "uptime_kuma", "url": "https://k.example/api/push/x", "instance": "nope"},
            "push[0].instance: no instance has this name (configured: home)",
        ),
        (
            {"type": "gatus", "url": "https://g.example", "instance": "home", "token": "abcdefgh"},
            "push[0]: gatus needs key",
        ),
        (
            {"type": "gatus", "url": "https://g.example", "instance": "home", "key": "k"},
            "push[0]: gatus needs token",
        ),
        (
            {"type": "kuma", "url": "https://k.example", "instance": "home"},
            "push[0].type: must be 'uptime_kuma', 'healthchecks' or 'gatus'",
        ),
        (
            {"type": "healthchecks", "url": "ftp://hc.example/secret-path", "instance": "home"},
            "push[0].url: must be an http:// or https:// URL (the value is not shown)",
        ),
        ({"type": "healthchecks", "instance": "home"}, "push[0]: url is required (or url_file)"),
        (
            {"type": "healthchecks", "url": "https://hc.example/x", "instance": "home", "check": "totp"},
            "push[0].check: the check is not enabled on instance home",
        ),
        (
            {"type": "healthchecks", "url": "https://hc.example/x", "instance": "home", "chek": "live"},
            "push[0].chek: unknown key (did you mean check?)",
        ),
    ],
)
def test_push_configuration_errors_are_one_line_naming_the_key(push, expected):
    inst = {"name": "home", "url": "https://2fauth.example"}
    with pytest.raises(config.ConfigError) as info:
        config.from_mapping({"instances": [inst], "push": [push]})
    assert len(info.value.problems) == 1, info.value.problems
    assert info.value.problems[0].startswith(expected), info.value.problems
    assert "secret-path" not in info.value.problems[0]


def test_heartbeat_configuration_errors():
    inst = {"name": "home", "url": "https://2fauth.example"}
    for heartbeat, expected in (
        ({"interval": "60s"}, "heartbeat: url is required (or url_file)"),
        ({"url": "https://hc.example/x", "interval": "500ms"}, "heartbeat: interval must be at least 1s"),
    ):
        with pytest.raises(config.ConfigError) as info:
            config.from_mapping({"instances": [inst], "heartbeat": heartbeat})
        assert info.value.problems == [expected]


def test_push_secrets_from_files_and_variables_are_redacted(tmp_path):
    from monitor.secrets import redact

    (tmp_path / "url").write_text(f"https://hc.example/ping/{HC_UUID}\n")
    (tmp_path / "token").write_text(GATUS_TOKEN)
    (tmp_path / "hb").write_text(f"https://hc.example/ping/{HEARTBEAT_UUID}")
    settings = config.from_mapping(
        {
            "instances": [{"name": "home", "url": "https://2fauth.example"}],
            "push": [
                {"type": "healthchecks", "url_file": str(tmp_path / "url"), "instance": "home"},
                {
                    "type": "gatus",
                    "url": "https://g.example",
                    "key": "k",
                    "instance": "home",
                    "token_file": str(tmp_path / "token"),
                },
                {"type": "uptime_kuma", "url": "${KUMA_URL}", "instance": "home"},
            ],
            "heartbeat": {"url_file": str(tmp_path / "hb")},
        },
        env={"KUMA_URL": f"https://kuma.example/api/push/{KUMA_TOKEN}"},
    )
    assert settings.push[0].target_url() == f"https://hc.example/ping/{HC_UUID}"
    assert settings.heartbeat is not None and settings.heartbeat.interval == 60
    text = f"https://hc.example/ping/{HC_UUID}/fail {GATUS_TOKEN} https://kuma.example/api/push/{KUMA_TOKEN}?status=up https://hc.example/ping/{HEARTBEAT_UUID}"
    clean = redact(text)
    for secret in (HC_UUID, GATUS_TOKEN, KUMA_TOKEN, HEARTBEAT_UUID):
        assert secret not in clean, clean
