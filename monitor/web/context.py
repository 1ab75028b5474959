"""The status page's one context, built from the settings and the store (and the running monitor,
for the freshest results). HTML, JSON, badges and the static render all render from it.

Reads come from rollups, aggregated in SQL, so the page costs a few queries whatever the window;
raw rows are read only for one instance's detail (latest flow, latest failures).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from monitor import maintenance
from monitor.alerts import deliveries
from monitor.config import Instance, Settings
from monitor.store.queries import DAY, HOUR, uptime_ratio
from monitor.web.incidents import recent_incidents
from monitor.web.source import Source
from monitor.web.wording import CHECK_TEXT, KIND_TEXT, SEVERITY, STATUS_TEXT, public_text

WINDOWS: dict[str, float] = {"24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY, "90d": 90 * DAY, "365d": 365 * DAY}
BAR_DAYS = 90
# chart buckets per window: (daily rollups?, bucket seconds): about 24 to 100 points each
CHART_STEPS: dict[str, tuple[bool, float]] = {
    "24h": (False, HOUR),
    "7d": (False, 2 * HOUR),
    "30d": (False, 8 * HOUR),
    "90d": (True, DAY),
    "365d": (True, 4 * DAY),
}


class WindowError(ValueError):
    """A window query parameter that is not one of WINDOWS."""


def display_url(url: str) -> str:
    """The URL without any user:password it carries."""
    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def parse_window(value: str | None, default: str) -> str:
    if not value:
        return default
    if value not in WINDOWS:
        raise WindowError(f"window must be one of {', '.join(WINDOWS)}, not '{value[:20]}'")
    return value


def refresh_seconds(settings: Settings) -> int:
    """The page's auto refresh in whole seconds, at least 5 (0: off), so a page never reloads in a loop."""
    refresh = settings.web.refresh
    return max(int(refresh), 5) if refresh else 0


def worst(statuses: list[str]) -> str:
    return max(statuses, key=SEVERITY.__getitem__, default="unknown")


def bar_level(day: dict[str, Any]) -> str:
    """ok, degraded, down, maintenance or none: the bar's class (its tooltip says it in words)."""
    if not day["count"]:
        return "none"
    if day["count"] == day["maintenance"]:
        return "maintenance"
    if not day["down"] and not day["degraded"]:
        return "ok"
    ratio = uptime_ratio(day) or 0.0
    return "down" if day["down"] and ratio < 0.99 else "degraded"


def since_in(first: float | None, now: float) -> dict[str, float | None]:
    """Per window: when monitoring began, if that was inside the window (its uptime then covers
    only the time since), else None."""
    return {
        w: first if first is not None and first > now - seconds else None for w, seconds in WINDOWS.items()
    }


def _check(
    inst: Instance, check: str, state: Any, uptimes: dict[str, dict], now: float, first: float | None
) -> dict[str, Any]:
    label, description = CHECK_TEXT.get(check, (check, ""))
    out: dict[str, Any] = {
        "name": check,
        "label": label,
        "description": description,
        "status": "unknown",
        "kind": None,
        "message": "",
        "since": None,
        "last_at": None,
        "age_s": None,
        "latency_ms": None,
        "stale": False,
        "uptime": {w: (uptimes[w].get((inst.name, check)) or {}).get("uptime") for w in WINDOWS},
        "observed_since": first,
        "uptime_since": since_in(first, now),
    }
    if state is not None:
        stale = now - state.last_at > 3 * inst.check_interval(check) + 60
        out.update(
            status="unknown" if stale else state.status,
            kind=None if stale else state.kind,
            message=public_text(inst, state.message) if state.status != "up" else "",
            since=state.since,
            last_at=state.last_at,
            age_s=max(0.0, now - state.last_at),
            latency_ms=None if state.latency_ms is None else round(state.latency_ms, 1),
            stale=stale,
        )
    out["status_text"] = STATUS_TEXT[out["status"]]
    out["kind_text"] = KIND_TEXT.get(out["kind"] or "", out["kind"] or "")
    return out


def _instance(
    inst: Instance, states: dict, uptimes: dict[str, dict], now: float, window: str, firsts: dict
) -> dict:
    checks = [
        _check(inst, c, states.get((inst.name, c)), uptimes, now, firsts.get((inst.name, c)))
        for c in inst.enabled_checks()
    ]
    first = min((c["observed_since"] for c in checks if c["observed_since"] is not None), default=None)
    status = worst([c["status"] for c in checks if c["status"] != "unknown"]) if checks else "unknown"
    own = sorted((s for (i, _), s in states.items() if i == inst.name), key=lambda s: -s.last_at)
    version = next((s.version for s in own if s.version), None)
    release = next((s.release for s in own if s.release), None)
    notices = sorted(
        {public_text(inst, s.notice) for s in own if s.notice and s.check in inst.enabled_checks()}
    )
    uptime, latency_avg = {}, {}
    for w in WINDOWS:
        rows = [uptimes[w].get((inst.name, c["name"])) or {} for c in checks]
        keys = ("count", "up", "degraded", "down", "maintenance", "latency_sum", "latency_n")
        totals = {k: sum(r.get(k) or 0 for r in rows) for k in keys}
        uptime[w] = uptime_ratio(totals)
        n = totals["latency_n"]
        latency_avg[w] = round(totals["latency_sum"] / n, 1) if n else None
    return {
        "name": inst.name,
        "label": inst.label,
        "url": display_url(inst.url) if inst.show_url else None,
        "version": version,
        "release": release,
        "notices": notices,
        "status": status,
        "status_text": STATUS_TEXT[status],
        "in_maintenance": False,
        "uptime": uptime,
        "uptime_window": uptime[window],
        "observed_since": first,
        "uptime_since": since_in(first, now),
        "latency_avg_ms": latency_avg,
        "checks": checks,
    }


def instance_summary(src: Source, name: str, window: str, now: float | None = None) -> dict | None:
    """One instance's status, checks and uptimes, without history: what a badge needs."""
    inst = src.settings.instance(name)
    if inst is None:
        return None
    now = time.time() if now is None else now
    uptimes = src.store.uptime_windows(WINDOWS, now, name)
    return _instance(inst, src.store.states(), uptimes, now, window, src.store.first_seen(name))


def _bars(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for day in rows:
        day["level"] = bar_level(day)
    return rows


def _series(src: Source, instance: str | None, window: str, now: float) -> dict[str, dict[str, list]]:
    """{instance: {check: [{t, avg, min, max}]}} for the response-time chart."""
    daily, step = CHART_STEPS[window]
    size = DAY if daily else HOUR
    start = (now - WINDOWS[window]) // size * size
    out: dict[str, dict[str, list]] = {}
    for row in src.store.latency_buckets(instance, start, step, daily=daily):
        point = {"t": row["t"], "avg": round(row["avg"], 1), "min": row["min"], "max": row["max"]}
        out.setdefault(row["instance"], {}).setdefault(row["check"], []).append(point)
    return out


def _overall(instances: list[dict[str, Any]]) -> dict[str, str]:
    known = [i["status"] for i in instances if i["status"] not in ("unknown", "maintenance")]
    if not known:
        if any(i["in_maintenance"] for i in instances):
            return {"status": "maintenance", "text": "Maintenance in progress"}
        return {"status": "unknown", "text": "Waiting for the first checks"}
    if "down" in known:
        everything = len(known) == len(instances) and all(s == "down" for s in known)
        return {"status": "down", "text": "Major outage" if everything else "Partial outage"}
    if "degraded" in known:
        return {"status": "degraded", "text": "Degraded service"}
    if any(i["in_maintenance"] for i in instances):
        return {"status": "maintenance", "text": "Maintenance in progress"}
    return {"status": "up", "text": "All systems operational"}


def page_context(
    src: Source, *, window: str | None = None, now: float | None = None, instance: str | None = None
) -> dict[str, Any]:
    """Everything the status page shows, as plain JSON-ready data (times are unix seconds).

    With `instance`, the context has that instance only, plus its detail: per-check bars and
    series, the latest TOTP flow's steps, the latest failures and its incidents.
    """
    now = time.time() if now is None else now
    web = src.settings.web
    window = parse_window(window, web.default_window)
    insts = [i for i in src.settings.instances if instance is None or i.name == instance]
    states = src.store.states()
    uptimes = src.store.uptime_windows(WINDOWS, now, instance)
    series = _series(src, instance, window, now)
    instances = []
    all_bars = src.store.daily_bars_all(BAR_DAYS, now) if instance is None else {}
    firsts = src.store.first_seen(instance)
    for inst in insts:
        item = _instance(inst, states, uptimes, now, window, firsts)
        bars = all_bars.get(inst.name) or src.store.daily_bars(inst.name, None, BAR_DAYS, now)
        item["bars"] = _bars(bars)
        item["series"] = series.get(inst.name, {})
        instances.append(item)
    maintenance = maintenance_windows(src, now, instance)
    for item in instances:
        for m in maintenance["active"]:
            if not m["instances"] or item["name"] in m["instances"]:
                item.update(status="maintenance", status_text="Under maintenance", in_maintenance=True)
    by_name = {i.name: i for i in insts}
    incidents = recent_incidents(src, now, since=now - WINDOWS[window], instance=instance)
    context: dict[str, Any] = {
        "title": web.title,
        "description": web.description,
        "notice": web.notice,
        "generated_at": now,
        "refresh": refresh_seconds(src.settings),
        "window": window,
        "windows": list(WINDOWS),
        "bar_days": BAR_DAYS,
        "overall": _overall(instances),
        "instances": instances,
        "incidents": incidents,
        "maintenance": maintenance,
    }
    if instance is not None and instances:
        context["detail"] = _detail(src, by_name[instance], instances[0], now)
    return context


def _detail(src: Source, inst: Instance, item: dict[str, Any], now: float) -> dict[str, Any]:
    checks = {}
    for check in item["checks"]:
        checks[check["name"]] = _bars(src.store.daily_bars(inst.name, check["name"], BAR_DAYS, now))
    flow = src.latest(inst.name, "totp") if "totp" in inst.enabled_checks() else None
    journey = src.latest(inst.name, "browser") if "browser" in inst.enabled_checks() else None
    return {
        "bars": checks,
        "flow": _flow(inst, flow),
        "journey": _flow(inst, journey),
        "failures": fold_failures(inst, src.store.failures(inst.name, limit=FAILURE_ROWS)),
        "deliveries": _deliveries(src, inst),
    }


FAILURE_ROWS, FAILURE_LINES = 500, 20  # raw failures read, lines shown


def fold_failures(inst: Instance, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The latest failures, newest first, a check's repeats of one failure (same status, kind,
    HTTP status and message, with no other failure of that check between) folded into one line
    with their count and first and last time."""
    lines: list[dict[str, Any]] = []
    latest: dict[str, dict[str, Any]] = {}  # check -> its line being folded
    for row in rows:
        key = (row["status"], row["kind"], row["http_status"], row["message"])
        line = latest.get(row["check"])
        if line is not None and line["key"] == key:
            line.update(count=line["count"] + 1, first_at=row["started_at"])
            continue
        if len(lines) == FAILURE_LINES:
            break
        line = latest[row["check"]] = {
            "key": key,
            "check": row["check"],
            "check_label": CHECK_TEXT.get(row["check"], (row["check"],))[0],
            "status": row["status"],
            "kind": row["kind"],
            "kind_text": KIND_TEXT.get(row["kind"] or "", row["kind"] or ""),
            "message": public_text(inst, row["message"]),
            "http_status": row["http_status"],
            "started_at": row["started_at"],  # the latest run
            "first_at": row["started_at"],
            "count": 1,
        }
        lines.append(line)
    for line in lines:
        del line["key"]
    return lines


def _deliveries(src: Source, inst: Instance) -> dict[str, list[dict[str, Any]]]:
    """Alert deliveries still pending or given up on, so a broken notifier is seen."""
    found = deliveries(src.store, inst.name, limit=20)
    return {
        state: [
            {
                "notifier": row["notifier"],
                "event": row["event"],
                "check": row["check"],
                "check_label": CHECK_TEXT.get(row["check"], (row["check"],))[0],
                "attempts": row["attempts"],
                "created_at": row["created_at"],
                "next_attempt_at": row.get("next_attempt_at"),
                "last_status": row.get("last_status"),
                "last_error": public_text(inst, row.get("last_error") or ""),
            }
            for row in rows
        ]
        for state, rows in found.items()
    }


def _flow(inst: Instance, result: dict[str, Any] | None) -> dict[str, Any] | None:
    """The latest TOTP flow (or browser journey) as a waterfall: each step with its offset from the start."""
    if not result:
        return None
    offset, steps = 0.0, []
    for step in result.get("steps") or []:
        steps.append({**step, "outcome": public_text(inst, step["outcome"]), "offset_ms": round(offset, 1)})
        offset += step["duration_ms"] or 0.0
    return {
        "started_at": result["started_at"],
        "status": result["status"],
        "total_ms": round(offset, 1),
        "skew_s": result.get("skew_s"),
        "steps": steps,
    }


def maintenance_windows(src: Source, now: float, instance: str | None = None) -> dict[str, list]:
    """Maintenance in progress, and the next time of each window planned within a week."""
    labels = {i.name: i.label for i in src.settings.instances}
    out: dict[str, list] = {"active": [], "upcoming": []}
    seen: set[int] = set()
    for o in maintenance.upcoming(src.settings, now, instance=instance):
        if o.start > now and id(o.window) in seen:
            continue  # a recurring window: its next time is enough
        seen.add(id(o.window))
        item = {
            "title": o.title,
            "description": o.description,
            "instances": list(o.instances),
            "instance_labels": [labels.get(name, name) for name in o.instances],
            "start": o.start,
            "end": o.end,
        }
        out["active" if o.start <= now < o.end else "upcoming"].append(item)
    return out


def history(src: Source, name: str, check: str | None, window: str, now: float | None = None) -> dict:
    """/api/v1/instances/{name}/history: uptime, rollups, latency and raw results over a window."""
    now = time.time() if now is None else now
    seconds = WINDOWS[window]
    daily = seconds > 35 * DAY
    size = DAY if daily else HOUR
    rollups = src.store.rollups(name, check, (now - seconds) // size * size, daily=daily)
    raw_from = max(now - seconds, now - src.settings.storage.raw_retention)
    results = src.store.results_window(name, check, raw_from, now + 1, limit=1000)
    inst = src.settings.instance(name)
    if inst is not None:
        for row in results:
            row["message"] = public_text(inst, row["message"])
    return {
        "instance": name,
        "check": check,
        "window": window,
        "generated_at": now,
        "uptime": src.store.uptime(name, check, seconds, now),
        "rollup_size_s": size,
        "rollups": rollups,
        "results": results,
        "results_truncated": len(results) == 1000,
    }
