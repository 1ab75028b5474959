"""`2fauth-monitor render --config FILE --out DIR`: the status page written as plain files.

The same context and templates as the live pages, with links between .html files, so any web
server (or none: a folder opened in a browser) can show the page without the monitor running.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from monitor import config as configuration
from monitor.config import ConfigError
from monitor.plural import plural
from monitor.store import Store, StoreError
from monitor.web import badges, feed
from monitor.web.context import WINDOWS, page_context
from monitor.web.render import STATIC, links_for, render
from monitor.web.source import Source


def cmd_render(args: argparse.Namespace) -> int:
    settings = configuration.load_any(args.config)
    db = Path(settings.storage.path)
    if not db.is_file():
        raise ConfigError([f"storage.path: no database at {db}: run `2fauth-monitor run` first"])
    try:
        store = Store(db, read_only=True)
    except StoreError as exc:
        raise ConfigError([f"storage.path: {exc}"]) from None
    try:
        count = write_site(Source(settings, store), Path(args.out))
    finally:
        store.db.conn.close()
    print(f"wrote {plural(count, 'file')} to {args.out}")
    return 0


def write_site(src: Source, out: Path, now: float | None = None) -> int:
    """The whole site as files: a page per window, per instance, JSON, feed, badges, assets."""
    now = time.time() if now is None else now
    settings = src.settings
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "instances").mkdir(exist_ok=True)
    except OSError as exc:
        raise ConfigError([f"--out: cannot create {out}: {exc.strerror or exc}"]) from None
    written: list[Path] = []

    def write(rel: str, text: str) -> None:
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)

    for window in WINDOWS:
        ctx = page_context(src, window=window, now=now)
        suffix = "" if window == settings.web.default_window else f"-{window}"
        write(f"index{suffix}.html", render("index.html", ctx, links_for(settings, window, static_site=True)))
        if window == settings.web.default_window:
            write("status.json", json.dumps(ctx, ensure_ascii=False))
            write("feed.atom", feed.render_feed(src, now=now))
        for inst in settings.instances:
            detail = page_context(src, window=window, now=now, instance=inst.name)
            links = links_for(settings, window, root="../", static_site=True, instance_page=inst.name)
            write(f"instances/{inst.name}{suffix}.html", render("instance.html", detail, links))
    for inst in settings.instances:
        for kind in ("status", "uptime", "latency"):
            data = badges.badge(src, inst.name, kind, now=now) or badges.not_found(inst.name)
            svg = badges.render_svg(data)
            write(f"badge/{inst.name}/{kind}.svg", svg)
    shutil.copytree(STATIC, out / "static", dirs_exist_ok=True)
    written.extend(p for p in (out / "static").rglob("*") if p.is_file())
    if settings.web.logo is not None:
        logo = settings.web.logo
        try:
            shutil.copyfile(logo, out / "static" / f"logo{logo.suffix.lower()}")
        except OSError as exc:
            raise ConfigError([f"web.logo: cannot read {logo}: {exc.strerror or exc}"]) from None
    return len(written)
