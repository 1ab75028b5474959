"""HTML from the status context: the Jinja environment, its filters and the links of each page.

The same templates serve the live pages (`monitor.web.handlers`) and `2fauth-monitor render`
(`monitor.web.static_render`), which writes the page as plain files for any web server. Links are
relative, so both work under a sub-path behind a reverse proxy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from monitor.config import Settings
from monitor.web import charts
from monitor.web.context import CHART_STEPS, WINDOWS
from monitor.web.wording import CHECK_TEXT

_PACKAGE = Path(__file__).resolve().parent.parent  # monitor/, this module being monitor/web/render.py
# Inside a wheel the templates ship in the package; in a checkout they sit beside it.
TEMPLATES = _PACKAGE / "templates" if (_PACKAGE / "templates").is_dir() else _PACKAGE.parent / "templates"
STATIC = _PACKAGE / "static"
NONE = charts.NONE
LOGO_TYPES = {
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".ico": "image/x-icon",
}


def when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts)) if ts else NONE


def iso(ts: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else ""


def day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def duration(seconds: float | None) -> str:
    """45 s, 12 min, 3 h 20 min, 2 d 4 h: the largest unit and the next one when not zero."""
    if seconds is None:
        return NONE
    left = int(max(seconds, 0))
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    for i, (unit, size) in enumerate(units):
        if left >= size or unit == "s":
            text = f"{left // size} {unit}"
            if i + 1 < len(units) and (rest := left % size // units[i + 1][1]):
                text += f" {rest} {units[i + 1][0]}"
            return text
    return NONE


def since(ts: float, now: float) -> str:
    """'since 08:38 UTC, 2 min': when monitoring began and how long ago (the date when not today)."""
    same_day = time.gmtime(ts)[:3] == time.gmtime(now)[:3]
    began = time.strftime("%H:%M UTC", time.gmtime(ts)) if same_day else when(ts)
    return f"since {began}, {duration(now - ts)}"


def pct(ratio: float | None) -> str:
    """99.95 %, never rounded up to 100 % when anything failed."""
    if ratio is None:
        return NONE
    if ratio >= 1:
        return "100%"
    return f"{int(ratio * 10000) / 100:.2f}%"


def bar_text(bar: dict[str, Any]) -> str:
    """A daily bar's tooltip: date, uptime, incidents, downtime and maintenance, in words."""
    if not bar["count"]:
        return f"{day(bar['day'])}: no data"
    parts = [
        f"{day(bar['day'])}: {pct(bar['uptime'])} uptime" if bar["uptime"] is not None else day(bar["day"])
    ]
    n = bar["incidents"]
    parts.append("no incidents" if not n else f"{n} incident{'s' if n != 1 else ''}")
    if bar["downtime_s"]:
        parts.append(f"{duration(bar['downtime_s'])} down")
    if bar["maintenance"]:
        parts.append(f"{bar['maintenance']} of {bar['count']} checks in maintenance (not counted)")
    return ", ".join(parts)


@dataclass
class Links:
    """Relative links for one page, live (routes and ?window=) or static (.html files)."""

    root: str  # from this page to the site root: "" or "../"
    window: str
    default_window: str
    static_site: bool = False
    instance_page: str | None = None  # the instance this page shows, if any
    custom_logo: str | None = None  # suffix of a configured logo file
    refresh_off: bool = False

    def _suffix(self, window: str) -> str:
        return "" if window == self.default_window else f"-{window}"

    def index(self, window: str | None = None) -> str:
        w = window or self.window
        if self.static_site:
            return f"{self.root}index{self._suffix(w)}.html"
        return f"{self.root or './'}{self._query(w)}"

    def instance(self, name: str, window: str | None = None) -> str:
        w = window or self.window
        if self.static_site:
            return f"{self.root}instances/{name}{self._suffix(w)}.html"
        return f"{self.root}instances/{name}{self._query(w)}"

    def with_window(self, window: str) -> str:
        """This page with another uptime window."""
        if self.instance_page:
            return self.instance(self.instance_page, window)
        return self.index(window)

    def _query(self, window: str) -> str:
        params = [] if window == self.default_window else [f"window={window}"]
        if self.refresh_off:
            params.append("refresh=0")
        return "?" + "&".join(params) if params else ""

    def asset(self, path: str) -> str:
        return f"{self.root}static/{path}"

    def logo(self) -> str:
        if self.custom_logo:
            return f"{self.root}static/logo{self.custom_logo}" if self.static_site else f"{self.root}logo"
        return self.asset("logo.svg")

    def api(self) -> str:
        return f"{self.root}{'status.json' if self.static_site else 'api/v1/status'}"

    def feed(self) -> str:
        return f"{self.root}feed.atom"

    def refresh_toggle(self) -> str:
        """This page with auto refresh switched the other way (live pages only)."""
        return replace(self, refresh_off=not self.refresh_off).with_window(self.window)


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "svg", "atom", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, iso=iso, day=day, duration=duration, pct=pct, ms=charts.ms, since=since)
    env.globals.update(bar_text=bar_text, chart=_chart, timeline=charts.timeline, windows=WINDOWS)
    return env


def _chart(series: dict[str, list], window: str, now: float) -> dict[str, Any]:
    _, step = CHART_STEPS[window]
    labels = {c: t[0] for c, t in CHECK_TEXT.items()}
    return charts.latency_chart(series, start=now - WINDOWS[window], end=now, step=step, labels=labels)


ENV = environment()


def render(template: str, context: dict[str, Any], links: Links, **extra: Any) -> str:
    return ENV.get_template(template).render(ctx=context, links=links, **extra)


def links_for(settings: Settings, window: str, *, root: str = "", **kw: Any) -> Links:
    logo = settings.web.logo
    suffix = logo.suffix.lower() if logo is not None and logo.suffix.lower() in LOGO_TYPES else None
    return Links(root, window, settings.web.default_window, custom_logo=suffix, **kw)
