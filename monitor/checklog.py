"""The log lines of check results: each check's first result, then every change of status or cause.

A run like the one before it logs nothing. A result that is up (first or recovered), or anything
inside a maintenance window, is INFO; a check that is down or degraded (at first, or for a new
status or reason) is a WARNING: WARNING and above are problems, nothing else.

    home/live first result: up in 12ms (/up)
    home/totp up -> down (connect: connection to 2fauth.example.com:443 refused ...)
    home/totp down -> down (connect -> auth: GET /api/v1/user answered 401 ...)
    home/totp down -> up (was auth)
"""

from __future__ import annotations

import logging

from monitor.models import Result, Status

log = logging.getLogger("monitor.results")

MESSAGE_CHARS = 200  # a log line stays readable; the full message is in the history


def _short(message: str) -> str:
    message = " ".join(message.split())
    return message if len(message) <= MESSAGE_CHARS else message[: MESSAGE_CHARS - 1] + "…"


def _first_line(result: Result) -> str:
    if result.kind:
        return f"first result: {result.status} ({result.kind}: {_short(result.message)})"
    latency = f" in {result.latency_ms:.0f}ms" if result.latency_ms is not None else ""
    path = f" ({result.path})" if result.path else ""
    return f"first result: {result.status}{latency}{path}"


def _change_line(old: tuple[Status, str | None], result: Result) -> str:
    old_status, old_kind = old
    head = f"{old_status} -> {result.status}"
    if result.kind and old_kind and old_kind != result.kind:
        return f"{head} ({old_kind} -> {result.kind}: {_short(result.message)})"
    if result.kind:
        return f"{head} ({result.kind}: {_short(result.message)})"
    return f"{head} (was {old_kind})" if old_kind else head


class ResultLog:
    """Remembers each check's last status and kind, and logs what a user would want to know."""

    def __init__(self) -> None:
        self.last: dict[tuple[str, str], tuple[Status, str | None]] = {}

    def note(self, result: Result, *, maintenance: bool = False) -> None:
        key = (result.instance, result.check)
        old = self.last.get(key)
        now = (result.status, str(result.kind) if result.kind else None)
        self.last[key] = now
        if old == now:
            return
        text = _first_line(result) if old is None else _change_line(old, result)
        problem = result.status != Status.UP and not maintenance
        level = logging.WARNING if problem else logging.INFO
        suffix = " (in a maintenance window)" if maintenance and result.status != Status.UP else ""
        log.log(
            level,
            "%s/%s %s%s",
            result.instance,
            result.check,
            text,
            suffix,
            extra={
                "instance": result.instance,
                "check": result.check,
                "status": str(result.status),
                "kind": result.kind,
                "event": "first_result" if old is None else "state_change",
            },
        )

    def forget(self, instance: str) -> None:
        """An instance removed or changed by a reload starts over with a first result."""
        for key in [k for k in self.last if k[0] == instance]:
            del self.last[key]
