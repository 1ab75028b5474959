"""Incidents as the page and feed show them: one cause failing several checks of an instance is
one incident, headed by its cause; outages with healthy runs between them stay apart.

The rules are the alerts' (monitor/alerts/incident.py): checks in the page's order, where each
needs the ones before it, so the first one down is the cause and a later one down while it is
down its consequence; a check's kind is the one most of its failing runs had, shown with that
kind's latest message, so a line never mixes two runs.
"""

from __future__ import annotations

from typing import Any

from monitor import maintenance
from monitor.config import Instance
from monitor.web.source import Source
from monitor.web.wording import CHECK_TEXT, KIND_TEXT, SEVERITY, STATUS_TEXT, public_text

# failures of one instance's checks that overlap, or follow with fewer healthy runs between them
# than alerts.success_threshold, and begin within GROUP_SPAN of the first, are one incident
GROUP_SPAN = 3600.0


def _incident(src: Source, inst: Instance, row: dict[str, Any]) -> dict[str, Any]:
    cause = src.store.main_cause(inst.name, row["check"], row["started_at"], row["ended_at"])
    kind, message = cause if cause else (row["kind"], row["message"])  # pruned: its first run
    return {
        "check": row["check"],
        "check_label": CHECK_TEXT.get(row["check"], (row["check"],))[0],
        "status": row["status"],
        "kind": kind,
        "kind_text": KIND_TEXT.get(kind or "", kind or ""),
        "message": public_text(inst, message),
        "started_at": row["started_at"],
        "ended_at": row["ended_at"],
        "consequence_of": None,
    }


def _overlaps(a: dict[str, Any], b: dict[str, Any], now: float) -> bool:
    return a["started_at"] < (b["ended_at"] or now) and b["started_at"] < (a["ended_at"] or now)


def _per_check(parts: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """One line per check: a check that failed twice in one incident (a flap) is one line, its
    whole span, with the status, kind and message of its worst failure (the longest of those)."""
    by_check: dict[str, list[dict[str, Any]]] = {}
    for part in parts:
        by_check.setdefault(part["check"], []).append(part)
    out = []
    for same in by_check.values():
        worst = max(same, key=lambda p: (SEVERITY[p["status"]], (p["ended_at"] or now) - p["started_at"]))
        ends = [p["ended_at"] for p in same]
        out.append(
            {
                **worst,
                "started_at": min(p["started_at"] for p in same),
                "ended_at": None if None in ends else max(ends),
            }
        )
    return out


def _group(src: Source, inst: Instance, parts: list[dict[str, Any]], now: float) -> dict[str, Any]:
    order = list(CHECK_TEXT)
    parts = _per_check(parts, now)
    parts.sort(
        key=lambda p: (order.index(p["check"]) if p["check"] in order else len(order), p["started_at"])
    )
    for i, part in enumerate(parts):
        if part["status"] == "down":
            cause = next((c for c in parts[:i] if c["status"] == "down" and c["check"] != part["check"]
                          and _overlaps(c, part, now)), None)  # fmt: skip
            part["consequence_of"] = cause["check"] if cause else None
    worst = max(SEVERITY[p["status"]] for p in parts)
    # the cause that lasted longest heads it (a one-run blip of another check never does)
    causes = [p for p in parts if SEVERITY[p["status"]] == worst and not p["consequence_of"]]
    main = max(causes, key=lambda p: (p["ended_at"] or now) - p["started_at"])
    start = min(p["started_at"] for p in parts)
    ongoing = any(p["ended_at"] is None for p in parts)
    end = None if ongoing else max(p["ended_at"] for p in parts)
    return {
        "instance": inst.name,
        "instance_label": inst.label,
        "checks": parts,
        "check_label": ", ".join(dict.fromkeys(p["check_label"] for p in parts)),
        "status": main["status"],
        "status_text": STATUS_TEXT.get(main["status"], main["status"]),
        "cause": main["check"],
        "kind": main["kind"],
        "kind_text": main["kind_text"],
        "message": main["message"],
        "started_at": start,
        "ended_at": end,
        "ongoing": ongoing,
        "duration_s": round((end or now) - start),
        "during_maintenance": maintenance.active(src.settings, inst.name, start) is not None,
    }


def apart(src: Source, inst: Instance) -> float:
    """Seconds of all-green after which a new failure is a new incident: the healthy runs alerts
    need to resolve (success_threshold) of the instance's most frequent check, less half a run."""
    runs = src.settings.alerts.for_instance(inst).success_threshold
    every = min((inst.check_interval(c) for c in inst.enabled_checks()), default=inst.interval)
    return max(1.0, (runs - 0.5) * every)


def recent_incidents(
    src: Source, now: float, *, since: float | None = None, instance: str | None = None, limit: int = 10
) -> list[dict[str, Any]]:
    """Incidents of configured instances, newest first, with public messages, each listing its
    checks with their own kind and message."""
    by_name = {i.name: i for i in src.settings.instances}
    rows = [
        r for r in src.store.incidents(instance, since=since, limit=limit * 8) if r["instance"] in by_name
    ]
    groups: list[tuple[str, list[dict[str, Any]]]] = []
    open_group: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: r["started_at"]):
        inst = by_name[row["instance"]]
        part = _incident(src, inst, row)
        current = open_group.get(row["instance"])
        if current is not None:
            ends = [p["ended_at"] for p in current]
            end = now if None in ends else max(ends)
            start = current[0]["started_at"]
            if part["started_at"] - start <= GROUP_SPAN and part["started_at"] < end + apart(src, inst):
                current.append(part)
                continue
        open_group[row["instance"]] = [part]
        groups.append((row["instance"], open_group[row["instance"]]))
    out = [_group(src, by_name[name], parts, now) for name, parts in groups]
    out.sort(key=lambda g: g["started_at"], reverse=True)
    return out[:limit]
