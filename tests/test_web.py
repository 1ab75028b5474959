"""The status page, JSON API, badges, feed and headers over real HTTP, served by a real
`2fauth-monitor run` process watching simulated 2FAuth instances, with 90 days of history
written through the real store beforehand."""

from __future__ import annotations

import http.client
import re
import xml.etree.ElementTree as ET

import httpx
import pytest

from monitor import simulator
from tests.conftest import Site, wait_for

HTML = {"Accept": "text/html"}


def test_page_shows_every_instance_with_status_in_words_and_the_banner(site: Site) -> None:
    page = site.get("/", headers=HTML)
    assert page.status_code == 200
    text = page.text
    assert "Partial outage" in text  # office is down, the others up
    for label in ("Home vault", "Family", "Office"):
        assert f">{label}</a></h2>" in text
    assert text.count("Operational</span>") >= 6  # home and family: 3 checks each
    assert "server error" in text  # office's checks say why, not only a colour
    assert "2FAuth 8.0.1" in text  # the version the web page carries


def test_page_has_90_daily_bars_with_tooltips_and_an_svg_chart(site: Site) -> None:
    text = site.get("/").text
    bars = re.findall(r'<li class="bar lvl-(\w+)" tabindex="0" title="([^"]+)">', text)
    assert len(bars) == 3 * 90
    assert all(re.match(r"\d{4}-\d{2}-\d{2}: ", title) for _, title in bars)
    assert any("incident" in title and "down" in title for _, title in bars)  # the seeded outages
    assert {"ok", "down"} <= {level for level, _ in bars}
    assert text.count('<svg class="chart"') == 3
    assert re.search(r'<polyline class="line line-totp" fill="none" points="[\d., ]+"', text)


def test_base_url_shown_only_where_configured(site: Site) -> None:
    text = site.get("/").text
    assert site.sim.url in text  # home: show_url
    assert site.sim_probes.url not in text  # family: hidden
    assert site.sim.url_for("office") not in text  # office: hidden, also in its messages
    body = site.get("/api/v1/status").json()
    assert {i["name"]: i["url"] for i in body["instances"]} == {
        "home": site.sim.url,
        "family": None,
        "office": None,
    }


def test_window_is_chosen_with_links_and_changes_the_uptime_shown(site: Site) -> None:
    default = site.get("/").text
    assert re.search(r'<a href="\./"(?: aria-current="page")?>30d</a>', default)
    week = site.get("/?window=7d").text
    assert '<a href="./?window=7d" aria-current="page">7d</a>' in week
    assert "uptime over 7d" in week
    body = site.get("/api/v1/status?window=90d").json()
    assert body["window"] == "90d"
    assert set(body["instances"][0]["uptime"]) == {"24h", "7d", "30d", "90d", "365d"}


def test_bad_window_is_a_clear_400(site: Site) -> None:
    page = site.get("/?window=2d", headers=HTML)
    assert page.status_code == 400
    assert "window must be one of 24h, 7d, 30d, 90d, 365d" in page.text
    api = site.get("/api/v1/status?window=forever")
    assert api.status_code == 400
    assert api.json() == {"error": "window must be one of 24h, 7d, 30d, 90d, 365d, not 'forever'"}


def test_json_is_the_same_context_as_the_page(site: Site) -> None:
    body = site.get("/api/v1/status").json()
    text = site.get("/").text
    assert body["overall"] == {"status": "down", "text": "Partial outage"}
    statuses = {i["name"]: i["status"] for i in body["instances"]}
    assert statuses == {"home": "up", "family": "up", "office": "down"}
    for inst in body["instances"]:
        assert len(inst["bars"]) == 90
        assert f"{inst['label']}</a></h2>" in text
        for check in inst["checks"]:
            assert check["name"] in ("live", "ready", "totp")
    office = next(i for i in body["instances"] if i["name"] == "office")
    assert all(c["kind"] == "server_error" for c in office["checks"])
    assert body["incidents"][0]["instance"] == "office" and body["incidents"][0]["ongoing"]


def test_recent_incidents_list_check_kind_start_duration_and_message(site: Site) -> None:
    text = site.get("/?window=90d").text
    section = text[text.index('id="incidents"') :]
    assert "cannot connect" in section  # the seeded outage's kind, in words
    assert "connection refused (the container was restarting) (simulated)" in section
    assert re.search(r"lasted \d+ (min|h)", section)
    assert "<strong>ongoing</strong>" in section  # office, right now


def test_instance_detail_has_every_check_history_the_flow_and_failures(site: Site) -> None:
    page = site.get("/instances/home")
    assert page.status_code == 200
    text = page.text
    assert text.count('class="bar lvl-') == 3 * 90  # one row of bars per check
    flow = text[text.index('id="flow"') : text.index('id="failures"')]
    assert "<code>GET /api/v1/user</code>" in flow and "<code>POST /api/v1/twofaccounts/otp</code>" in flow
    assert flow.count('<svg class="timeline"') >= 2
    office = site.get("/instances/office").text
    failures = office[office.index('id="failures"') :]
    assert "answered 500" in failures


def test_unknown_instance_is_404_page_or_json(site: Site) -> None:
    page = site.get("/instances/nope", headers=HTML)
    assert page.status_code == 404
    assert "there is no instance named &#39;nope&#39;" in page.text
    assert site.get("/api/v1/instances/nope/history").json() == {"error": "there is no instance named 'nope'"}


def test_history_api_gives_rollups_and_results(site: Site) -> None:
    body = site.get("/api/v1/instances/home/history?check=totp&window=24h").json()
    assert body["check"] == "totp" and body["rollup_size_s"] == 3600
    assert 20 <= len(body["rollups"]) <= 25
    assert body["results"] and all(r["check"] == "totp" for r in body["results"])
    assert body["uptime"]["count"] > 0
    year = site.get("/api/v1/instances/home/history?window=365d").json()
    assert year["rollup_size_s"] == 86400 and len({r["bucket"] for r in year["rollups"]}) >= 89
    bad = site.get("/api/v1/instances/home/history?check=nope")
    assert bad.status_code == 400 and "check must be one of" in bad.json()["error"]


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/badge/home/status.svg", ["Home vault", "operational"]),
        ("/badge/office/status.svg", ["Office", "down"]),
        ("/badge/home/uptime.svg?window=7d", ["uptime 7d", "%"]),
        ("/badge/home/latency.svg", ["response time", " ms"]),
        ("/badge/home/status.svg?label=vault", [">vault<", "operational"]),
    ],
)
def test_badges_are_svg_made_here(site: Site, path: str, words: list[str]) -> None:
    response = site.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    root = ET.fromstring(response.text)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    for word in words:
        assert word in response.text
    assert "http" not in response.text.replace("http://www.w3.org/2000/svg", "")  # nothing fetched


def test_shields_endpoint_json(site: Site) -> None:
    body = site.get("/badge/home/shields.json?type=uptime&window=30d").json()
    assert body["schemaVersion"] == 1 and body["label"] == "uptime 30d"
    assert re.fullmatch(r"\d+(\.\d\d)?%", body["message"])
    assert site.get("/badge/office/shields.json").json()["color"] == "red"


def test_badge_errors(site: Site) -> None:
    unknown = site.get("/badge/nope/status.svg")
    assert unknown.status_code == 404 and "unknown instance" in unknown.text
    assert site.get("/badge/home/status.svg?label=" + "x" * 80).status_code == 400
    assert site.get("/badge/home/colour.svg").status_code == 400


def test_atom_feed_lists_incidents(site: Site) -> None:
    response = site.get("/feed.atom")
    assert response.headers["content-type"].startswith("application/atom+xml")
    ns = {"a": "http://www.w3.org/2005/Atom"}
    feed = ET.fromstring(response.content)
    entries = feed.findall("a:entry", ns)
    assert entries
    titles = [e.findtext("a:title", "", namespaces=ns) for e in entries]
    assert titles[0].startswith("Office · ") and "Down (server error)" in titles[0]
    assert all(e.findtext("a:id", "", namespaces=ns).startswith("urn:uuid:") for e in entries)
    link = entries[0].find("a:link", ns)
    assert link is not None and link.get("href") == "./instances/office"  # no base_url: relative
    assert feed.findtext("a:title", namespaces=ns) == "Test status: incidents"


@pytest.mark.parametrize(
    "path", ["/", "/instances/home", "/api/v1/status", "/static/style.css", "/nope", "/live"]
)
def test_security_headers_on_every_response(site: Site, path: str) -> None:
    headers = site.get(path).headers
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "http" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"


def test_page_uses_no_inline_script_or_style_and_no_outside_source(site: Site) -> None:
    for path in ("/", "/instances/home"):
        text = site.get(path).text
        assert "<script>" not in text and " style=" not in text and "<style" not in text
        for url in re.findall(r'(?:src|href)="([^"]+)"', text):
            assert not url.startswith(("http:", "https:", "//")) or url == site.sim.url  # home's shown URL


def test_auto_refresh_header_can_be_turned_off(site: Site) -> None:
    assert site.get("/").headers["refresh"] == "30"
    off = site.get("/?refresh=0")
    assert "refresh" not in off.headers
    assert 'href="./?window=7d&amp;refresh=0"' in off.text  # the choice sticks across windows


@pytest.mark.parametrize(
    "path",
    [
        "/static/../config.py",
        "/static/../../pyproject.toml",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static/..%2f..%2fpyproject.toml",
    ],
)
def test_static_files_do_not_escape_their_folder(site: Site, path: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", site.proc.port, timeout=5)
    conn.request("GET", path)  # sent as written: no client-side clean-up of the dots
    response = conn.getresponse()
    body = response.read().decode(errors="replace")
    conn.close()
    assert response.status in (400, 404)
    assert "pydantic" not in body and "[project]" not in body


def test_requests_with_bodies_or_long_urls_are_refused(site: Site) -> None:
    assert httpx.post(site.url + "/", content=b"x" * 5000, timeout=5).status_code == 413
    assert httpx.post(site.url + "/", timeout=5).status_code == 405
    assert site.get("/?window=" + "x" * 3000).status_code == 414


def test_no_secret_reaches_any_response(site: Site) -> None:
    for path in (
        "/",
        "/instances/home",
        "/api/v1/status",
        "/api/v1/instances/home/history",
        "/feed.atom",
        "/metrics",
    ):
        text = site.get(path).text
        assert simulator.DEFAULT_TOKEN not in text
        assert simulator.DEFAULT_CANARY_SECRET not in text


def test_live_and_ready(site: Site) -> None:
    assert site.get("/live").status_code == 200
    ready = site.get("/ready")
    assert ready.status_code == 200
    assert ready.headers["content-type"] == "application/health+json"
    assert ready.json()["status"] == "pass"


def test_static_assets_are_served_by_the_monitor(site: Site) -> None:
    css = site.get("/static/style.css")
    assert css.status_code == 200 and "prefers-color-scheme: dark" in css.text
    assert site.get("/static/logo.svg").headers["content-type"] == "image/svg+xml"
    assert site.get("/static/local-time.js").status_code == 200


def test_page_after_a_new_result_shows_it(site: Site) -> None:
    """The page reads the running monitor: a recovery shows within one interval or two."""
    site.sim.set_faults([], instance="office")
    try:
        wait_for(
            lambda: "Partial outage" not in site.get("/").text,
            timeout=20,
            message="office to recover on the page",
        )
        assert site.get("/badge/office/shields.json").json()["message"] == "operational"
    finally:
        site.sim.set_faults(["server_error"], instance="office")
        wait_for(lambda: "Partial outage" in site.get("/").text, timeout=20, message="office down again")
