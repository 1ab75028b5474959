"""Incidents as an Atom feed (RFC 4287), for feed readers and chat integrations."""

from __future__ import annotations

import time
import uuid

from monitor.sanitize import xml_safe
from monitor.web.incidents import recent_incidents
from monitor.web.render import ENV
from monitor.web.source import Source

FEED_SIZE = 50


def entry_id(incident: dict) -> str:
    """A stable id per incident: the same incident keeps its id when it resolves."""
    key = f"{incident['instance']}/{incident['started_at']:.3f}"
    return uuid.uuid5(uuid.NAMESPACE_URL, f"2fauth-monitor:incident:{key}").urn


def render_feed(src: Source, *, now: float | None = None) -> str:
    """The newest incidents; links are absolute under `web.base_url` only (never
    taken from the request's Host header, which a visitor chooses): relative without it."""
    now = time.time() if now is None else now
    site = src.settings.web.base_url or ""
    if site and not site.endswith("/"):
        site += "/"
    links = site or "./"  # relative links resolve against the feed's own address
    incidents = recent_incidents(src, now, limit=FEED_SIZE)
    for incident in incidents:
        incident["id"] = entry_id(incident)
        incident["updated"] = incident["ended_at"] or incident["started_at"]
    updated = max((i["updated"] for i in incidents), default=now)
    feed_id = uuid.uuid5(uuid.NAMESPACE_URL, f"2fauth-monitor:feed:{site or src.settings.web.title}").urn
    return xml_safe(
        ENV.get_template("feed.atom").render(
            title=src.settings.web.title, site=links, incidents=incidents, updated=updated, feed_id=feed_id
        )
    )
