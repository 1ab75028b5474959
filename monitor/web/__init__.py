"""The status page: HTML, JSON, badges, the feed and /metrics, all from one status context.

`routes` lists what the server answers and `handlers` answers it; `context` builds what every
view shows (from `source`: the settings, the store and the running monitor); `render` turns it
into HTML, `badges` into SVG, `feed` into Atom, `metrics` into Prometheus' exposition;
`static_render` writes the page as files; `cache` keeps built pages for a few seconds; `guard`
and `connections` stand between visitors and the monitor.
"""

from __future__ import annotations

from monitor.web.routes import create_app

__all__ = ["create_app"]
