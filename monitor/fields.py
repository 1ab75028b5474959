"""Setting types shared by `monitor.config` and the notifier settings beside their senders.

Both layers import from here (notifiers sit below config), so durations, names and the frozen
model base are defined once.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: Any) -> float:
    """'90s', '5m', '1h30m', '2d' or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 1h")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("expected a duration such as 30s, 5m or 1h")
    text = value.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError("is not a duration: use a number with s, m, h or d, such as 30s or 5m")
    return total


def format_duration(seconds: float) -> str:
    """Seconds -> the shortest of '45s', '5m', '2h', '3d' that is exact, else seconds."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[float, BeforeValidator(parse_duration)]


class FrozenModel(BaseModel):
    """A settings section: unknown keys are errors, and the values never change after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True)
