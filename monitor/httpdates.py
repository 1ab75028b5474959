"""HTTP date headers (Date, Retry-After) read the same way by the checks and the webhook notifier."""

from __future__ import annotations

from datetime import UTC
from email.utils import parsedate_to_datetime


def http_date(value: str | None) -> float | None:
    """Unix seconds from an HTTP date (a date without a zone is read as UTC), else None."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return when.timestamp()
    except (ValueError, OverflowError):
        return None


def retry_after(value: str | None, now: float, limit: float) -> tuple[float, bool] | None:
    """A Retry-After header (delta seconds or an HTTP date) as (seconds to wait, bounded to
    0..limit; whether the sender asked for more than limit), or None when absent or unreadable."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        asked = float(value)
    except ValueError:
        when = http_date(value)
        if when is None:
            return None
        asked = when - now
    if asked != asked:  # NaN
        return None
    return max(0.0, min(asked, limit)), asked > limit
