"""Retry-After and Date headers, read once for the checks and the webhook notifier."""

from __future__ import annotations

import httpx
import pytest

from monitor.checks.http import retry_after_info, server_time
from monitor.httpdates import http_date, retry_after

NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
LIMIT = 3600.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", (120.0, False)),
        (" 90 ", (90.0, False)),
        ("7200", (3600.0, True)),  # asked for more than the limit: capped, and said so
        ("-5", (0.0, False)),
        ("Fri, 15 Jan 2027 08:02:00 GMT", (120.0, False)),
        ("Fri, 15 Jan 2027 07:00:00 GMT", (0.0, False)),  # a date in the past: no wait
        ("Sat, 16 Jan 2027 08:00:00 GMT", (3600.0, True)),
        ("Fri, 15 Jan 2027 08:02:00 -0000", (120.0, False)),  # no zone: read as UTC
        ("soon", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_dates_within_the_limit(value, expected):
    assert retry_after(value, NOW, LIMIT) == expected


def test_http_date_refuses_what_is_not_a_date():
    assert http_date("Fri, 15 Jan 2027 08:00:00 GMT") == NOW
    assert http_date("yesterday") is None and http_date(None) is None


def test_the_checks_read_retry_after_and_date_through_the_same_parser():
    headers = httpx.Headers({"Retry-After": "999999", "Date": "Fri, 15 Jan 2027 08:00:00 GMT"})
    assert retry_after_info(headers) == (3600.0, True)
    assert retry_after_info(httpx.Headers({"Retry-After": "later"})) == (60.0, False)
    assert server_time(headers) == NOW
