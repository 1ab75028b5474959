"""The status page: HTML, JSON, badges, the feed and /metrics, all from one status context.

`routes` lists what the server answers and `handlers` answers it; `context` builds what every
view shows (from `source`: the settings, the store and the running monitor); `render` turns it
into HTML, `badges` into SVG, `feed` into Atom, `metrics` into Prometheus' exposition;
`static_render` writes the page as files; `cache` keeps built pages for a few seconds; `guard`
and `connections` stand between visitors and the monitor.
"""

from __future__ import annotations

from monitor.web import metrics, static_render
from monitor.web.routes import create_app

__all__ = ["create_app", "register"]


def register() -> None:
    """Hook into the CLI: the `render` command, and /metrics' listener in `run`."""
    from monitor import cli  # the CLI sits above this layer; explicit wiring replaces this hook

    cli.EXTRA_COMMANDS.append(static_render.add_render_command)
    cli.ATTACH.append(metrics.attach)
