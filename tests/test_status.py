"""The status context from a real SQLite history written through the store: bars, uptime,
maintenance, incidents, hidden URLs, the demo history, and the static render."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from monitor import config
from monitor.demo_history import seed_history
from monitor.models import Kind, Result, Status
from monitor.store import Store
from monitor.web.context import page_context
from monitor.web.render import bar_text, links_for, pct, render
from monitor.web.source import Source
from monitor.web.wording import public_text
from tests.conftest import run_cli

DAY = 86400
NOW = 1_790_000_000.0  # a fixed clock: 2026-09-21 14:13 UTC
TODAY = NOW // DAY * DAY


def settings_for(tmp_path: Path, *names: str, **web: Any) -> config.Settings:
    instances = [
        {"name": n, "url": f"http://10.0.0.{i + 1}:8000", "interval": "60s"} for i, n in enumerate(names)
    ]
    return config.from_mapping(
        {"instances": instances, "storage": {"path": str(tmp_path / "m.db")}, "web": web}, env={}
    )


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "m.db")
    yield s
    s.close()


def record(store: Store, instance: str, check: str, status: Status, at: float, **kw: Any) -> None:
    maintenance = kw.pop("maintenance", False)
    kind = kw.pop("kind", None if status == Status.UP else Kind.CONNECT)
    store.record(
        Result(instance, check, status, kind, started_at=at, latency_ms=20.0, **kw), maintenance=maintenance
    )


def test_maintenance_shows_as_maintenance_and_is_left_out_of_uptime(tmp_path: Path, store: Store) -> None:
    settings = settings_for(tmp_path, "home")
    day = TODAY - 2 * DAY
    for i in range(10):
        record(store, "home", "live", Status.UP, day + i * 600)
        record(store, "home", "live", Status.DOWN, day + 7200 + i * 600, maintenance=True)
    for i in range(5):  # a whole day of planned work
        record(store, "home", "live", Status.DOWN, day + DAY + i * 600, maintenance=True)
    for i in range(3):
        record(store, "home", "live", Status.UP, TODAY + i * 60)
    store.flush()
    ctx = page_context(Source(settings, store), now=TODAY + 300)
    bars = ctx["instances"][0]["bars"]
    mixed, planned = bars[-3], bars[-2]
    assert mixed["level"] == "ok" and mixed["uptime"] == 1.0
    assert bar_text(mixed).endswith("10 of 20 checks in maintenance (not counted)")
    assert planned["level"] == "maintenance" and planned["uptime"] is None
    assert ctx["instances"][0]["uptime"]["7d"] == 1.0  # the down runs were all during maintenance


def test_uptime_is_never_rounded_up_to_100_percent(tmp_path: Path, store: Store) -> None:
    settings = settings_for(tmp_path, "home")
    for i in range(2000):
        record(store, "home", "live", Status.UP, TODAY - DAY + i * 40)
    record(store, "home", "live", Status.DOWN, TODAY - 100)
    record(store, "home", "live", Status.UP, TODAY - 40)
    store.flush()
    ctx = page_context(Source(settings, store), now=TODAY + 1)
    ratio = ctx["instances"][0]["uptime"]["24h"]
    assert 0.999 < ratio < 1
    assert pct(ratio) == "99.95%"
    assert pct(0.999999) == "99.99%" and pct(1.0) == "100%" and pct(None) == "\u2013"
    assert ctx["instances"][0]["bars"][-2]["level"] == "degraded"  # one failure, over 99% up
    assert "1 incident" in bar_text(ctx["instances"][0]["bars"][-2])


def test_checks_failing_together_are_one_incident(tmp_path: Path, store: Store) -> None:
    settings = settings_for(tmp_path, "home", "office")
    start = TODAY - 3 * DAY
    for check in ("live", "ready", "totp"):
        record(store, "home", check, Status.UP, start - 60)
    record(
        store, "home", "totp", Status.DOWN, start, kind=Kind.TIMEOUT, message="no complete answer within 10s"
    )
    record(store, "home", "live", Status.DOWN, start + 20, message="connection refused")
    record(store, "home", "ready", Status.DOWN, start + 40, message="connection refused")
    for check in ("live", "ready", "totp"):
        record(store, "home", check, Status.UP, start + 1800)
    record(store, "home", "live", Status.DOWN, start + DAY, message="later, alone")
    record(store, "home", "live", Status.UP, start + DAY + 120)
    record(store, "office", "live", Status.DOWN, start + 10, message="office")
    store.flush()
    incidents = page_context(Source(settings, store), now=TODAY, window="7d")["incidents"]
    assert [(i["instance"], i["check_label"]) for i in incidents] == [
        ("home", "Web server"),
        ("office", "Web server"),
        ("home", "Web server, Readiness, TOTP codes"),
    ]
    outage = incidents[-1]
    assert outage["started_at"] == start and outage["duration_s"] == 1800 and not outage["ongoing"]
    assert {c["message"] for c in outage["checks"]} == {"no complete answer within 10s", "connection refused"}
    assert incidents[1]["ongoing"]


def test_a_check_not_heard_from_is_shown_as_no_recent_data(tmp_path: Path, store: Store) -> None:
    settings = settings_for(tmp_path, "home")
    record(store, "home", "live", Status.UP, NOW - 3600)
    store.flush()
    ctx = page_context(Source(settings, store), now=NOW)
    check = ctx["instances"][0]["checks"][0]
    assert check["status"] == "unknown" and check["status_text"] == "No recent data" and check["stale"]
    assert ctx["overall"] == {"status": "unknown", "text": "Waiting for the first checks"}


def test_hidden_base_url_is_scrubbed_from_messages(tmp_path: Path) -> None:
    hidden = config.Instance(name="a", url="https://vault.example.net/2fa")
    shown = config.Instance(name="b", url="https://vault.example.net/2fa", show_url=True)
    message = "GET https://vault.example.net/2fa/up redirects to vault.example.net:8443"
    assert public_text(hidden, message) == "GET (instance)/up redirects to (host):8443"
    assert public_text(shown, message) == message


def test_page_reads_rollups_so_pruned_raw_rows_change_nothing(tmp_path: Path, store: Store) -> None:
    settings = settings_for(tmp_path, "home")
    seed_history(store, settings, days=40, now=NOW)
    before = page_context(Source(settings, store), now=NOW, window="30d")
    deleted = store.prune(raw_retention=DAY, rollup_retention=400 * DAY, now=NOW)
    assert deleted["results"] > 0
    after = page_context(Source(settings, store), now=NOW, window="30d")
    for key in ("uptime", "bars", "series"):
        assert after["instances"][0][key] == before["instances"][0][key]


def test_seeded_demo_history_has_90_days_and_a_few_incidents(tmp_path: Path, store: Store) -> None:
    settings = settings_for(tmp_path, "home", "family")
    written = seed_history(store, settings, now=NOW)
    assert written > 10_000
    ctx = page_context(Source(settings, store), now=NOW, window="90d")
    for inst in ctx["instances"]:
        assert sum(1 for b in inst["bars"] if b["count"]) >= 89
        assert 0.99 < inst["uptime"]["90d"] < 1
        assert any(b["maintenance"] for b in inst["bars"])
        assert {"ok", "down"} <= {b["level"] for b in inst["bars"]}
        assert inst["series"]["live"] and inst["checks"][0]["last_at"] < NOW
    assert 4 <= len(ctx["incidents"]) <= 10
    assert all(i["message"].endswith("(simulated)") for i in ctx["incidents"])
    assert {i["kind"] for i in ctx["incidents"]} >= {"connect", "server_error"}


def test_active_and_upcoming_maintenance_are_shown(tmp_path: Path, store: Store) -> None:
    now = time.time()
    start = datetime.fromtimestamp(now - 600, UTC).replace(tzinfo=None).isoformat(timespec="minutes")
    settings = config.from_mapping(
        {
            "instances": [
                {"name": "home", "url": "http://10.0.0.1"},
                {"name": "office", "url": "http://10.0.0.2"},
            ],
            "maintenance": [
                {"title": "Upgrade to 5.6", "instances": ["home"], "start": start, "duration": "1h"},
                {"title": "Nightly backup", "cron": "0 3 * * *", "duration": "30m"},
            ],
        },
        env={},
    )
    for check in ("live", "ready"):
        record(store, "home", check, Status.DOWN, now - 60, maintenance=True, kind=Kind.MAINTENANCE)
        record(store, "office", check, Status.UP, now - 60)
    store.flush()
    ctx = page_context(Source(settings, store), now=now)
    assert [m["title"] for m in ctx["maintenance"]["active"]] == ["Upgrade to 5.6"]
    assert ctx["maintenance"]["active"][0]["instance_labels"] == ["home"]
    assert [m["title"] for m in ctx["maintenance"]["upcoming"]] == ["Nightly backup"]  # its next time only
    home = ctx["instances"][0]
    assert home["status"] == "maintenance" and home["status_text"] == "Under maintenance"
    assert ctx["overall"] == {"status": "maintenance", "text": "Maintenance in progress"}
    html = render("index.html", ctx, links_for(settings, ctx["window"]))
    assert "In progress</span> <strong>Upgrade to 5.6</strong> (home)" in html
    assert "Planned</span> <strong>Nightly backup</strong>" in html


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.urls.append(value)


def test_render_writes_a_static_site_whose_links_all_resolve(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "home", "family")
    store = Store(settings.storage.path)
    seed_history(store, settings, days=30)
    store.close()
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(settings.model_dump(mode="json", exclude_defaults=True)))
    out = tmp_path / "site"
    done = run_cli("render", "--config", str(path), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"wrote \d+ files to .*site\n", done.stdout)
    index = (out / "index.html").read_text()
    assert ">home</a></h2>" in index and ">family</a></h2>" in index
    assert '<meta http-equiv="refresh" content="60">' in index
    assert json.loads((out / "status.json").read_text())["instances"][1]["name"] == "family"
    assert (out / "badge" / "home" / "uptime.svg").read_text().startswith("<svg")
    pages = list(out.glob("*.html")) + list((out / "instances").glob("*.html"))
    assert len(pages) == 5 + 2 * 5  # a page per window, and per instance and window
    for page in pages:
        parser = _Links()
        parser.feed(page.read_text())
        for url in parser.urls:
            target = urlsplit(url).path
            if not target:  # #fragment on the same page
                continue
            assert not url.startswith(("http:", "https:", "/")), url
            assert (page.parent / target).resolve().is_file(), f"{page.name}: {url}"


def test_render_without_a_database_says_so_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "instances": [{"name": "a", "url": "http://10.0.0.1"}],
                "storage": {"path": str(tmp_path / "none.db")},
            }
        )
    )
    done = run_cli("render", "--config", str(path), "--out", str(tmp_path / "site"))
    assert done.returncode == 2
    assert (
        done.stderr
        == f"error: storage.path: no database at {tmp_path / 'none.db'}: run `2fauth-monitor run` first\n"
    )
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize(("refresh", "seconds"), [("0", 0), ("0.5s", 5), ("30s", 30), ("2m", 120)])
def test_auto_refresh_is_never_faster_than_every_5_seconds(
    tmp_path: Path, store: Store, refresh, seconds
) -> None:
    settings = settings_for(tmp_path, "home", refresh=refresh)
    assert page_context(Source(settings, store), now=NOW)["refresh"] == seconds
