"""What an alert says: the webhook JSON body (schema version 1), a title and a text for people,
and Jinja2 body templates in which every inserted value is a JSON literal.

Webhook body, version 1 (every key always present; null when unknown). One event is about one
instance's incident: every check one cause failed is in `checks`, the cause first named.

    version         1
    id              delivery id, also in the X-Monitor-Delivery header: drop repeats by it
    event           down | degraded | resolved | reminder | test
    severity        critical (down, reminder) | warning (degraded) | info (resolved, test)
    instance        instance name;  instance_label: its display name
    check           the incident's cause: live | ready | totp;  check_label: the page's name of it
    old_status      up | degraded | down (null for a test)
    new_status      up | degraded | down
    kind            the cause's kind (timeout, connect, otp_mismatch, ...), null for a test
    message         the cause's message (the latest run of that kind)
    checks          one object per check of the incident: check, label, status, kind, message,
                    since, consequence_of (the check whose failure this one follows from, or null)
    since           ISO 8601 UTC: when the reported state began (for resolved: when the problem began)
    at              ISO 8601 UTC: when this event happened
    duration_s      whole seconds from since to at
    link            the instance's status page (null unless web.base_url is set)
    title, text     a ready-made summary for chat messages
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from jinja2 import StrictUndefined, TemplateError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from monitor.notifiers.base import Alert, AlertCheck

VERSION = 1
SEVERITY = {
    "down": "critical",
    "reminder": "critical",
    "degraded": "warning",
    "resolved": "info",
    "test": "info",
}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def human_duration(seconds: float) -> str:
    """3725 -> '1h 2m'; the two largest units."""
    seconds = max(0, int(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2])


def _name(alert: Alert) -> str:
    return alert.check_label or alert.check


def _cause(alert: Alert) -> str:
    """'Web server (maintenance)', with the other checks: '; Readiness and TOTP codes too'."""
    cause = _name(alert) + (f" ({alert.kind})" if alert.kind else "")
    others = [c.label for c in alert.checks if c.check != alert.check]
    if not others:
        return cause
    also = others[0] if len(others) == 1 else ", ".join(others[:-1]) + " and " + others[-1]
    return f"{cause}; {also} too"


def title(alert: Alert) -> str:
    """'Home is down: Web server (maintenance); Readiness and TOTP codes too'."""
    if alert.event == "test":
        return "Test alert from 2fauth-monitor"
    who = alert.instance_label
    if alert.event == "down" and alert.old_status == "down":
        return f"{who} is still down, now: {_cause(alert)}"  # a new cause within the incident
    if alert.event == "down":
        return f"{who} is down: {_cause(alert)}"
    if alert.event == "degraded":
        no_longer = " (no longer down)" if alert.old_status == "down" else ""
        return f"{who} is degraded{no_longer}: {_cause(alert)}"
    if alert.event == "reminder":
        return f"{who} is still down: {_cause(alert)}"
    names = [c.label for c in alert.checks] or [_name(alert)]
    return f"{who} is up again: {', '.join(names)}"


def _line(check: AlertCheck, event: str) -> str:
    """One check's line: its status, kind and message, all from one run."""
    if check.consequence_of and event != "resolved":
        return f"{check.label}: {check.status} as a consequence ({check.kind or 'failing'})"
    reason = f"{check.kind}: {check.message}" if check.kind else check.message
    was = "was " if event == "resolved" else ""
    return f"{check.label}: {was}{check.status}" + (f", {reason}" if reason else "")


def text(alert: Alert) -> str:
    """Title, one line per check, since when, and the link: a message a person can act on."""
    lines = [title(alert)]
    if alert.event == "test":
        lines.append(alert.message)
        return "\n".join(lines)
    if alert.checks:
        lines += [_line(c, alert.event) for c in alert.checks]
    elif alert.event != "resolved" and (alert.kind or alert.message):
        lines.append(f"{alert.kind}: {alert.message}" if alert.kind else alert.message)
    if alert.event == "resolved":
        lines.append(f"It was {alert.old_status} for {human_duration(alert.at - alert.since)}.")
    else:
        lines.append(f"Since {iso(alert.since)} ({human_duration(alert.at - alert.since)}).")
    if alert.link:
        lines.append(alert.link)
    return "\n".join(lines)


def build(alert: Alert, delivery_id: str) -> dict[str, Any]:
    """The version 1 webhook body as a dict."""
    return {
        "version": VERSION,
        "id": delivery_id,
        "event": alert.event,
        "severity": SEVERITY.get(alert.event, "info"),
        "instance": alert.instance,
        "instance_label": alert.instance_label,
        "check": alert.check,
        "check_label": _name(alert),
        "old_status": alert.old_status,
        "new_status": alert.new_status,
        "kind": alert.kind,
        "message": alert.message,
        "since": iso(alert.since),
        "at": iso(alert.at),
        "duration_s": round(max(0.0, alert.at - alert.since)),
        "checks": [
            {**asdict(c), "since": iso(c.since) if c.since is not None else None} for c in alert.checks
        ],
        "link": alert.link,
        "title": title(alert),
        "text": text(alert),
    }


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


# --- templates ---------------------------------------------------------------------------------


def _json_literal(value: Any) -> str:
    """Every {{ value }} becomes a JSON literal: a quote, newline or emoji in a name cannot break the body."""
    return json.dumps(value, ensure_ascii=False, default=str)


_env = ImmutableSandboxedEnvironment(
    finalize=_json_literal, undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
)


class TemplateProblem(ValueError):
    """A body template that cannot make a JSON body; the message is one line."""


def render(source: str, body: dict[str, Any]) -> bytes:
    """Render a body template with the version 1 keys (and `payload`, all of them); must give JSON."""
    try:
        out = _env.from_string(source).render(**body, payload=body)
    except UndefinedError as exc:
        known = ", ".join([*body, "payload"])
        raise TemplateProblem(f"{_one_line(exc.message or str(exc))}; the values are {known}") from None
    except TemplateError as exc:
        raise TemplateProblem(_one_line(exc.message or str(exc))) from None
    try:
        json.loads(out)
    except ValueError as exc:
        raise TemplateProblem(
            f"the body is not JSON ({exc}); write {{{{ value }}}} without quotes around it: "
            "each value is inserted as a JSON literal"
        ) from None
    return out.encode()


def check_template(source: str) -> None:
    """Raise ValueError (one line) unless the template makes JSON for an awkward sample alert."""
    sample = Alert(
        event="down",
        instance="home",
        instance_label='Ho"me\n\\ 🔐 ünïcode',
        check="totp",
        old_status="up",
        new_status="down",
        kind="timeout",
        message='a "quoted"\nmessage',
        since=0.0,
        at=60.0,
        link=None,
        check_label="TOTP codes",
        checks=(AlertCheck("totp", "TOTP codes", "down", "timeout", 'a "quoted"\nmessage', 0.0),),
    )
    render(source, build(sample, "sample"))


def _one_line(text: str) -> str:
    return " ".join(text.split())
