"""The status page in real headless Chromium: what a visitor sees, that nothing leaves the box,
no console error, screenshots as artifacts, and no serious accessibility problem (axe-core)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import ROOT, Site

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE = ROOT / ".cache/npm/node_modules/axe-core/axe.min.js"  # `.ci/run` installs it there
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def axe_path() -> Path:
    if not AXE.is_file():
        subprocess.run(
            ["npm", "install", "--prefix", str(ROOT / ".cache/npm"), "axe-core@4"],
            check=True,
            capture_output=True,
            timeout=120,
        )
    return AXE


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


class Visit:
    """A page in its own context, recording console errors and every request's host."""

    def __init__(self, browser: Any, **options: Any) -> None:
        self.context = browser.new_context(**options)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.hosts: set[str] = set()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.hosts.add(urlsplit(r.url).hostname or r.url))

    def open(self, url: str) -> Any:
        response = self.page.goto(url, wait_until="load")
        assert response is not None and response.status == 200
        return self.page

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser) -> Iterator[Any]:
    opened: list[Visit] = []

    def make(**options: Any) -> Visit:
        v = Visit(browser, **options)
        opened.append(v)
        return v

    yield make
    for v in opened:
        v.close()


def test_visitor_sees_each_instance_status_bars_and_chart(site: Site, visit) -> None:
    v = visit(viewport={"width": 1280, "height": 900})
    page = v.open(site.url + "/")
    assert page.locator("h1#overall").inner_text().endswith("Partial outage")
    for label in ("Home vault", "Family", "Office"):
        assert page.get_by_role("heading", name=label).is_visible()
    office = page.locator("section.instance", has=page.get_by_role("heading", name="Office"))
    assert office.locator(".instance-head .pill").inner_text().endswith("Down")
    home = page.locator("section.instance", has=page.get_by_role("heading", name="Home vault"))
    pills = home.locator("tbody .pill").all_inner_texts()
    assert len(pills) == 3 and all(p.endswith("Operational") for p in pills)
    assert page.locator("ol.bars").count() == 3
    assert page.locator("ol.bars > li.bar").count() == 270
    assert page.locator("svg.chart polyline").count() >= 3
    box = page.locator("svg.chart").first.bounding_box()
    assert box is not None and box["width"] > 600 and box["height"] > 100
    # a bar's tooltip: on focus its text shows, in words
    bar = page.locator("#bars-home li.bar").last
    bar.focus()
    tip = bar.locator(".tip")
    assert tip.is_visible() and "uptime" in tip.inner_text()
    path = v.screenshot("status-page.png")
    assert path.stat().st_size > 20_000
    assert v.errors == []
    assert v.hosts == {"127.0.0.1"}


def test_window_links_work_without_javascript(site: Site, visit) -> None:
    v = visit(java_script_enabled=False)
    page = v.open(site.url + "/")
    page.get_by_role("link", name="7d", exact=True).click()
    page.wait_for_url("**/?window=7d")
    assert page.locator('nav.windows a[aria-current="page"]').inner_text() == "7d"
    assert "uptime over 7d" in page.locator("#bars-home").locator("..").locator("..").inner_text()
    page.locator("#i-home a").click()
    page.wait_for_url("**/instances/home?window=7d")
    assert page.locator("table.waterfall tbody tr").count() >= 2
    assert v.errors == [] and v.hosts == {"127.0.0.1"}


@pytest.mark.parametrize(
    ("name", "options"),
    [
        (
            "phone-dark.png",
            {"viewport": {"width": 390, "height": 844}, "color_scheme": "dark", "is_mobile": True},
        ),
        ("desktop-light.png", {"viewport": {"width": 1280, "height": 900}, "color_scheme": "light"}),
    ],
)
def test_readable_on_a_phone_and_in_dark_mode(site: Site, visit, name: str, options: dict) -> None:
    v = visit(**options)
    page = v.open(site.url + "/instances/office")
    assert page.evaluate("document.documentElement.scrollWidth") <= options["viewport"]["width"]
    page = v.open(site.url + "/")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= options["viewport"]["width"]  # nothing forces sideways scrolling
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    dark = background == "rgb(13, 17, 23)"
    assert dark == (options["color_scheme"] == "dark")
    v.screenshot(name)
    assert v.errors == []


@pytest.mark.parametrize("path", ["/", "/instances/home", "/instances/office?window=90d"])
def test_no_serious_accessibility_violation(site: Site, visit, axe_path: Path, path: str) -> None:
    # the page's CSP rightly refuses injected scripts; axe is injected for the test only
    v = visit(bypass_csp=True)
    page = v.open(site.url + path)
    page.add_script_tag(path=str(axe_path))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    serious = [
        f"{x['id']} ({x['impact']}): {x['help']} at {[n['target'] for n in x['nodes']][:3]}"
        for x in result["violations"]
        if x["impact"] in ("serious", "critical")
    ]
    assert serious == []
    for scheme in ("dark",):  # contrast again with the other palette
        page.emulate_media(color_scheme=scheme)
        result = page.evaluate("axe.run(document, {runOnly: ['color-contrast']})")
        assert [x["id"] for x in result["violations"] if x["impact"] in ("serious", "critical")] == []


def test_instance_detail_in_the_browser(site: Site, visit) -> None:
    v = visit(viewport={"width": 1280, "height": 900})
    page = v.open(site.url + "/instances/home")
    assert page.locator("ol.bars").count() == 3
    assert page.locator("table.waterfall svg.timeline rect").count() >= 2
    assert page.locator("table.uptimes tbody tr").count() == 4
    v.screenshot("instance-page.png")
    assert v.errors == [] and v.hosts == {"127.0.0.1"}
