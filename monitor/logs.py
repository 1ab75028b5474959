"""Logging: one line per event, plain or JSON, secrets redacted from every record."""

from __future__ import annotations

import json
import logging
import sys
import time

from monitor.sanitize import clean
from monitor.secrets import RedactingFilter


class OneLine(logging.Filter):
    """A record's message as one line without control characters: a target's text can never forge
    a log line or drive the terminal (runs after redaction)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        safe = clean(message)
        if safe != message:
            record.msg, record.args = safe, None
        return True


class RepeatLimiter(logging.Filter):
    """At most `burst` identical warnings or errors (same logger, same text) per `window` seconds;
    the next one let through says how many were dropped. 81,597 accept errors in 14 s were 36 MB of
    log. Different texts (another instance's state change) are never held back by each other."""

    def __init__(self, burst: int = 5, window: float = 60.0, max_keys: int = 1000) -> None:
        super().__init__()
        self.burst, self.window, self.max_keys = burst, window, max_keys
        self.seen: dict[tuple[str, str], list[float]] = {}  # key -> [window start, count, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.getMessage()[:200])
        now = record.created
        entry = self.seen.get(key)
        if entry is None or now - entry[0] >= self.window:
            dropped = int(entry[2]) if entry else 0
            if len(self.seen) >= self.max_keys:
                self.seen.clear()
            self.seen[key] = [now, 1, 0]
            if dropped:
                record.msg = f"{record.getMessage()} ({dropped} more like this in the last minute not logged)"
                record.args = None
            return True
        entry[1] += 1
        if entry[1] > self.burst:
            entry[2] += 1
            return False
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("instance", "check", "status", "kind", "event"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        return json.dumps(entry, ensure_ascii=False)


def setup(fmt: str = "text", level: str = "INFO") -> None:
    """Configure the root logger once; every handler redacts secrets."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RepeatLimiter())
    handler.addFilter(RedactingFilter())
    handler.addFilter(OneLine())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "apscheduler", "uvicorn.access", "hpack", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
