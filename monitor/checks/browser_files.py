"""Screenshots of failed browser journeys, in a folder beside the history database: named by
instance and time only (no secret can be in a name), bounded in number and bytes, oldest removed
first. The status server lists and serves them (monitor/web/handlers.py)."""

from __future__ import annotations

import calendar
import os
import re
import time
from pathlib import Path

MAX_FILES = 50  # screenshots kept in all, across instances
MAX_BYTES = 25 * 1024 * 1024  # bytes kept in all
MAX_FILE_BYTES = 4 * 1024 * 1024  # a bigger screenshot is not kept
NAME = re.compile(r"^(?P<instance>[a-z0-9][a-z0-9_-]{0,62})-(?P<at>\d{8}T\d{6}\d{3})Z\.png$")


def screenshot_name(instance: str, started_at: float) -> str:
    """The file of the journey of `instance` that started at `started_at` (unix seconds)."""
    ms = round(started_at * 1000)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(ms // 1000))
    return f"{instance}-{stamp}{ms % 1000:03d}Z.png"


def keep(folder: Path, temp: Path, name: str) -> Path | None:
    """Move a finished screenshot into place and prune the folder; None when it is not kept."""
    try:
        size = temp.stat().st_size
    except OSError:
        return None
    if not 0 < size <= MAX_FILE_BYTES:
        temp.unlink(missing_ok=True)
        return None
    target = folder / name
    try:
        os.replace(temp, target)
        prune(folder)
    except OSError:
        return None
    return target


def prune(folder: Path, max_files: int = MAX_FILES, max_bytes: int = MAX_BYTES) -> None:
    """Remove the oldest screenshots past the bounds."""
    files = []
    for path in folder.glob("*.png"):
        match = NAME.match(path.name)
        if match:
            try:
                files.append((match["at"], path, path.stat().st_size))
            except OSError:
                continue
    files.sort(reverse=True)  # newest first
    total = 0
    for index, (_, path, size) in enumerate(files):
        total += size
        if index >= max_files or total > max_bytes:
            path.unlink(missing_ok=True)


def listed(folder: Path | None, instance: str) -> list[tuple[str, float]]:
    """(name, unix time of the journey) of an instance's kept screenshots, newest first."""
    if folder is None or not folder.is_dir():
        return []
    found = []
    for path in folder.glob(f"{instance}-*.png"):
        match = NAME.match(path.name)
        if match and match["instance"] == instance:
            at = (
                calendar.timegm(time.strptime(match["at"][:15], "%Y%m%dT%H%M%S"))
                + int(match["at"][15:]) / 1000
            )
            found.append((path.name, at))
    return sorted(found, key=lambda item: item[1], reverse=True)


def find(folder: Path | None, instance: str, name: str) -> Path | None:
    """The file of a screenshot name asked for over HTTP, only if it is one of ours."""
    match = NAME.match(name)
    if folder is None or match is None or match["instance"] != instance:
        return None
    path = folder / name
    return path if path.is_file() else None
