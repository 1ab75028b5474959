"""Incidents as the page and feed show them: overlapping failures of one instance are one incident."""

from __future__ import annotations

from typing import Any

from monitor import maintenance
from monitor.config import Instance
from monitor.web.source import Source
from monitor.web.wording import CHECK_TEXT, KIND_TEXT, SEVERITY, STATUS_TEXT, public_text

# failures of one instance's checks that overlap (or follow within GROUP_GAP) and begin within
# GROUP_SPAN of the first are one incident: an outage usually fails every check at once
GROUP_GAP, GROUP_SPAN = 600.0, 3600.0


def _incident(inst: Instance, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "check": row["check"],
        "check_label": CHECK_TEXT.get(row["check"], (row["check"],))[0],
        "status": row["status"],
        "kind": row["kind"],
        "kind_text": KIND_TEXT.get(row["kind"] or "", row["kind"] or ""),
        "message": public_text(inst, row["last_message"] or row["message"]),
        "started_at": row["started_at"],
        "ended_at": row["ended_at"],
    }


def _group(src: Source, inst: Instance, parts: list[dict[str, Any]], now: float) -> dict[str, Any]:
    order = list(CHECK_TEXT)
    parts.sort(key=lambda p: order.index(p["check"]) if p["check"] in order else len(order))
    main = max(parts, key=lambda p: (SEVERITY[p["status"]], -p["started_at"]))
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
        "kind": main["kind"],
        "kind_text": main["kind_text"],
        "message": main["message"],
        "started_at": start,
        "ended_at": end,
        "ongoing": ongoing,
        "duration_s": round((end or now) - start),
        "during_maintenance": maintenance.active(src.settings, inst.name, start) is not None,
    }


def recent_incidents(
    src: Source, now: float, *, since: float | None = None, instance: str | None = None, limit: int = 10
) -> list[dict[str, Any]]:
    """Incidents of configured instances, newest first, with public messages.

    Overlapping failures of one instance's checks make one incident (see GROUP_GAP), listing
    each check with its own kind and message.
    """
    by_name = {i.name: i for i in src.settings.instances}
    rows = [
        r for r in src.store.incidents(instance, since=since, limit=limit * 8) if r["instance"] in by_name
    ]
    groups: list[tuple[str, list[dict[str, Any]]]] = []
    open_group: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: r["started_at"]):
        part = _incident(by_name[row["instance"]], row)
        current = open_group.get(row["instance"])
        if current is not None:
            ends = [p["ended_at"] for p in current]
            end = now if None in ends else max(ends)
            start = current[0]["started_at"]
            if part["started_at"] - start <= GROUP_SPAN and part["started_at"] <= end + GROUP_GAP:
                current.append(part)
                continue
        open_group[row["instance"]] = [part]
        groups.append((row["instance"], open_group[row["instance"]]))
    out = [_group(src, by_name[name], parts, now) for name, parts in groups]
    out.sort(key=lambda g: g["started_at"], reverse=True)
    return out[:limit]
