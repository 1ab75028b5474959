"""Known secret values and their redaction from any text that leaves the process.

Every secret loaded from the configuration is registered here; `redact` replaces each with
'***'. Logs pass through `RedactingFilter`; result messages, stored errors and alert bodies
pass through `redact` before they are kept or sent.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, SecretStr

_lock = threading.Lock()
_values: set[str] = set()
MASK = "***"


def register(value: str | None) -> None:
    """Remember a secret so it is redacted wherever it would appear."""
    if value and len(value) >= 4:
        with _lock:
            _values.add(value)


def _walk(node: Any) -> None:
    if isinstance(node, SecretStr):
        register(node.get_secret_value())
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            value = getattr(node, name)
            if isinstance(value, str) and name.endswith("url"):
                register_url_password(value)
            _walk(value)
    elif isinstance(node, list | tuple):
        for item in node:
            _walk(item)
    elif isinstance(node, dict):
        for item in node.values():
            _walk(item)


def register_url_password(url: str) -> None:
    """A password written in a URL (https://user:password@host) is a secret too."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return
    if password:
        register(password)
        register(quote(password, safe=""))


def register_settings(settings: BaseModel) -> None:
    """Register every SecretStr found in a settings tree."""
    _walk(settings)


def forget_all() -> None:
    """Forget every registered secret (tests: each process has only its own configuration's)."""
    with _lock:
        _values.clear()


def redact(text: str) -> str:
    """The text with every registered secret replaced by '***'."""
    if not text:
        return text
    with _lock:
        values = sorted(_values, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Redacts secrets from a log record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
