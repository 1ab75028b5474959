"""Text that comes from a target (or a visitor) made safe before it is printed, logged, stored, fed
or alerted, and the bounds on what one result may carry.

`clean` is applied where a target's text enters (`api_message`, the version, `bound_result` for every
result a check returns and every result the store records) and again at the outputs that print
(the terminal, text logs). `xml_safe` keeps the Atom feed and the SVG badges valid XML even when
the database holds rows written before these rules.
"""

from __future__ import annotations

import dataclasses
import re

from monitor.models import Result

MAX_MESSAGE = 1000  # characters of a result's message
MAX_COMPONENTS = 50  # named components of a readiness answer
MAX_COMPONENT_NAME = 60
MAX_STEP_TEXT = 300  # a step's path and outcome
VERSION = re.compile(r"^\d+\.\d+(\.\d+)?([-+.][0-9A-Za-z.-]{1,20})?$")

REPLACEMENT = "\ufffd"
_BREAKS = re.compile(r"[\t\n\r\x0b\x0c\x85\u2028\u2029]+")
# C0 and C1 controls, DEL, bidi embeddings, overrides and isolates, lone surrogates, non-characters
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]"
)
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(text: str, limit: int | None = None) -> str:
    """One line of plain text: line breaks become spaces, other controls and bidi overrides a visible
    replacement character; cut to `limit` characters with an ellipsis."""
    if not text:
        return text
    text = _UNSAFE.sub(REPLACEMENT, _BREAKS.sub(" ", text))
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def xml_safe(text: str) -> str:
    """Only the characters XML 1.0 forbids replaced: for whole documents (feed, SVG)."""
    return _XML_INVALID.sub(REPLACEMENT, text)


def version(value: object) -> str | None:
    """A version string when it looks like one (5.4.3, 8.0.1-beta.2), else None."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    value = value.strip().removeprefix("v")
    return value if VERSION.fullmatch(value) else None


def bound_result(result: Result) -> Result:
    """The result with its target-derived text cleaned and bounded (in place; returned for chaining)."""
    result.message = clean(result.message or "", MAX_MESSAGE)
    result.version = version(result.version) if result.version else None
    if result.path is not None:
        result.path = clean(result.path, MAX_STEP_TEXT)
    if result.components:
        kept: dict[str, str] = {}
        for name, state in result.components.items():
            if len(kept) >= MAX_COMPONENTS:
                break
            kept[clean(str(name), MAX_COMPONENT_NAME)] = clean(str(state), 20)
        result.components = kept
    if result.steps:
        result.steps = [
            dataclasses.replace(s, path=clean(s.path, MAX_STEP_TEXT), outcome=clean(s.outcome, MAX_STEP_TEXT))
            for s in result.steps[:20]
        ]
    return result
