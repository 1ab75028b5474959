"""Geometry for the SVG drawn on the server: the response-time chart and the flow's timeline.

No chart library and no script: the templates draw these numbers as inline SVG, so the page
shows them with JavaScript off (the CSP allows no inline script anyway). Lines differ by dash as
well as colour; axis labels are set as text beside the SVG so they stay readable on a phone.
"""

from __future__ import annotations

import math
import time
from typing import Any

from monitor.checks import SPECS

WIDTH, HEIGHT = 600, 150  # the SVG stretches to its box; strokes keep their width
NONE = "\u2013"  # an en dash where there is no value
DASHES = {name: spec.dash for name, spec in SPECS.items()}


def _nice_max(value: float) -> float:
    """A round axis maximum at or just above value: 1, 2, 2.5 or 5 times a power of ten."""
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    return next(m * exp for m in (1, 2, 2.5, 5, 10) if value <= m * exp)


def ms(value: float | None) -> str:
    if value is None:
        return NONE
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def _when(ts: float, span: float) -> str:
    return time.strftime("%d %b %H:%M" if span <= 2 * 86400 else "%d %b", time.gmtime(ts))


def latency_chart(
    series: dict[str, list[dict[str, Any]]],
    *,
    start: float,
    end: float,
    step: float,
    labels: dict[str, str],
) -> dict[str, Any]:
    """Average response time per check: polylines (a gap where there is no data) and axis labels."""
    points = [p for pts in series.values() for p in pts]
    top = _nice_max(max((p["avg"] for p in points), default=0) * 1.1)
    span = max(end - start, 1.0)

    def x(t: float) -> float:
        return max(0.0, min(1.0, (t - start) / span)) * WIDTH

    def y(v: float) -> float:
        return HEIGHT - 1 - min(v / top, 1.0) * (HEIGHT - 2)

    lines, summary = [], []
    for check, pts in series.items():
        if not pts:
            continue
        avg = sum(p["avg"] for p in pts) / len(pts)
        summary.append(
            f"{labels.get(check, check)}: average {ms(avg)}, highest {ms(max(p['avg'] for p in pts))}"
        )
        segments: list[list[dict[str, Any]]] = []
        for p in pts:
            if segments and p["t"] - segments[-1][-1]["t"] <= step * 1.5:
                segments[-1].append(p)
            else:
                segments.append([p])
        for seg in segments:
            if len(seg) == 1:  # a lone point: a short tick, so it shows at any stretch
                px, py = x(seg[0]["t"]), y(seg[0]["avg"])
                coords = f"{px - 2:.1f},{py:.1f} {px + 2:.1f},{py:.1f}"
            else:
                coords = " ".join(f"{x(p['t']):.1f},{y(p['avg']):.1f}" for p in seg)
            lines.append({"check": check, "points": coords, "dash": DASHES.get(check, "")})
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "grid": [round(HEIGHT * i / 4, 1) for i in range(5)],
        "lines": lines,
        "checks": [c for c, pts in series.items() if pts],
        "labels": {c: labels.get(c, c) for c in series},
        "y_labels": [ms(top * i / 4) for i in range(4, -1, -1)],
        "x_labels": [_when(start, span), _when(start + span / 2, span), "now"],
        "summary": "; ".join(summary) or "No response times in this window.",
        "empty": not points,
        "points": max((len(pts) for pts in series.values()), default=0),  # of the longest line
        "step": step,
    }


def timeline(steps: list[dict[str, Any]], total_ms: float) -> list[dict[str, Any]]:
    """Each step's bar in a 100-wide box: x and width from its offset and duration."""
    total = max(total_ms, 1.0)
    return [
        {
            **step,
            "ok": step["outcome"] == "ok" and step["status"] is not None and step["status"] < 400,
            "x": round(100 * step["offset_ms"] / total, 2),
            "w": round(max(100 * (step["duration_ms"] or 0) / total, 0.8), 2),
        }
        for step in steps
    ]
