"""Badges for READMEs and dashboards: SVG drawn here from a template (no network), and the
shields.io endpoint JSON for those who prefer shields' own rendering.

Each badge is one instance's summary from `monitor.web.context`, the same data the page shows.
"""

from __future__ import annotations

import time
from typing import Any

from monitor.sanitize import xml_safe
from monitor.web import charts
from monitor.web.context import instance_summary, parse_window
from monitor.web.render import ENV, duration, pct
from monitor.web.source import Source

KINDS = ("status", "uptime", "latency")
# shields.io's named colours, so the SVG and the endpoint JSON agree
COLOURS = {
    "brightgreen": "#4c1",
    "green": "#97ca00",
    "yellow": "#dfb317",
    "orange": "#fe7d37",
    "red": "#e05d44",
    "blue": "#007ec6",
    "lightgrey": "#9f9f9f",
}
_STATUS = {
    "up": ("operational", "brightgreen"),
    "degraded": ("degraded", "yellow"),
    "down": ("down", "red"),
    "maintenance": ("maintenance", "blue"),
    "unknown": ("no data", "lightgrey"),
}
# Verdana 11px advance widths (what shields measures with); anything else counts as 7
_WIDTHS = dict.fromkeys("0123456789", 7.0) | {
    " ": 3.9, ".": 4.4, ",": 4.4, ":": 4.7, "%": 11.8, "-": 5.0, "/": 5.0, "(": 5.0, ")": 5.0,
    "a": 6.7, "b": 6.8, "c": 5.7, "d": 6.8, "e": 6.6, "f": 3.8, "g": 6.8, "h": 7.0, "i": 3.0,
    "j": 3.8, "k": 6.5, "l": 3.0, "m": 10.7, "n": 7.0, "o": 6.7, "p": 6.8, "q": 6.8, "r": 4.7,
    "s": 5.7, "t": 4.3, "u": 7.0, "v": 6.5, "w": 9.0, "x": 6.5, "y": 6.5, "z": 5.8,
    "I": 4.6, "M": 9.2, "W": 10.9,
}  # fmt: skip
MAX_LABEL = 40


class BadgeError(ValueError):
    """A badge request that cannot be answered: unknown kind, window or label."""


def _width(text: str) -> float:
    return sum(_WIDTHS.get(ch, 8.2 if ch.isupper() else 7.0) for ch in text)


def _uptime_colour(ratio: float | None) -> str:
    if ratio is None:
        return "lightgrey"
    for floor, colour in ((0.999, "brightgreen"), (0.99, "green"), (0.97, "yellow"), (0.95, "orange")):
        if ratio >= floor:
            return colour
    return "red"


def _latency_colour(ms: float | None) -> str:
    if ms is None:
        return "lightgrey"
    for ceiling, colour in ((300, "brightgreen"), (1000, "green"), (2000, "yellow"), (5000, "orange")):
        if ms < ceiling:
            return colour
    return "red"


def badge(
    src: Source,
    instance: str,
    kind: str,
    window: str | None = None,
    *,
    label: str | None = None,
    now: float | None = None,
) -> dict[str, Any] | None:
    """{label, message, color} for one instance, or None for an unknown instance."""
    if kind not in KINDS:
        raise BadgeError(f"badge must be one of {', '.join(KINDS)}")
    if label is not None and (len(label) > MAX_LABEL or not label.isprintable()):
        raise BadgeError(f"label must be printable text of at most {MAX_LABEL} characters")
    now = time.time() if now is None else now
    window = parse_window(window, "24h" if kind == "latency" else src.settings.web.default_window)
    summary = instance_summary(src, instance, window, now)
    if summary is None:
        return None
    if kind == "status":
        message, colour = _STATUS[summary["status"]]
        default_label = summary["label"]
    elif kind == "uptime":
        ratio = summary["uptime"][window]
        message, colour = pct(ratio) if ratio is not None else "no data", _uptime_colour(ratio)
        began = summary["uptime_since"][window]  # monitoring began inside the window: say how long
        default_label = f"uptime {window}" if began is None else f"uptime {duration(now - began)}"
    else:
        avg = summary["latency_avg_ms"][window]
        message, colour = charts.ms(avg) if avg is not None else "no data", _latency_colour(avg)
        default_label = "response time" if window == "24h" else f"response time {window}"
    return {"label": label or default_label, "message": message, "color": colour}


def shields_json(data: dict[str, Any]) -> dict[str, Any]:
    """The shields.io endpoint schema: https://shields.io/badges/endpoint-badge"""
    return {"schemaVersion": 1, "label": data["label"], "message": data["message"], "color": data["color"]}


def render_svg(data: dict[str, Any]) -> str:
    """A flat badge, like shields.io's, drawn from templates/badge.svg."""
    label_w = round(_width(data["label"]) + 10)
    message_w = round(_width(data["message"]) + 10)
    svg = ENV.get_template("badge.svg").render(
        label=data["label"],
        message=data["message"],
        colour=COLOURS[data["color"]],
        label_w=label_w,
        message_w=message_w,
        width=label_w + message_w,
    )
    return xml_safe(svg)  # a label from the query string or the database may hold NUL or ESC


def not_found(instance: str) -> dict[str, Any]:
    return {"label": instance[:MAX_LABEL], "message": "unknown instance", "color": "lightgrey"}
