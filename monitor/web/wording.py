"""The words every view uses for statuses, checks and error kinds, and what a public view may say."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from monitor.checks import SPECS
from monitor.config import Instance

SEVERITY = {"unknown": 0, "up": 1, "degraded": 2, "down": 3}
STATUS_TEXT = {
    "up": "Operational",
    "degraded": "Degraded",
    "down": "Down",
    "unknown": "No recent data",
    "maintenance": "Under maintenance",
}
CHECK_TEXT = {name: (spec.label, spec.description) for name, spec in SPECS.items()}  # in the page's order
KIND_TEXT = {
    "timeout": "no answer in time",
    "connect": "cannot connect",
    "tls": "TLS problem",
    "http_status": "unexpected HTTP status",
    "server_error": "server error",
    "maintenance": "maintenance mode",
    "not_a_health_endpoint": "not a health endpoint",
    "auth": "access refused",
    "rate_limited": "rate limited",
    "bad_response": "unexpected answer",
    "otp_mismatch": "wrong codes",
    "clock_skew": "server clock off",
    "decrypt": "cannot decipher secrets",
    "cert_expiry": "certificate expires soon",
    "token_expiry": "token expires soon",
    "config": "configuration problem",
    "not_ready": "not ready",
    "slow": "slow",
    "frontend": "web app broken",
}


def public_text(inst: Instance, text: str | None) -> str:
    """A message fit for the public page: the instance's address hidden unless show_url is on."""
    if not text or inst.show_url:
        return text or ""
    host = urlsplit(inst.url).hostname or ""
    text = text.replace(inst.url, "(instance)")
    if host:
        text = re.sub(re.escape(host), "(host)", text, flags=re.IGNORECASE)
    # what else may name the machine: any URL's host, a certificate's names, an IP address
    text = _URL_HOST.sub(r"\1(host)", text)
    text = _CERT_NAMES.sub(r"\1'(host)'", text)
    return _IP.sub("(address)", text)


_URL_HOST = re.compile(r"(https?://)[^/\s'\"?#]+", re.IGNORECASE)
_CERT_NAMES = re.compile(r"(not valid for |match |hostname |host )'[^']*'", re.IGNORECASE)
_IP = re.compile(
    r"\b\d{1,3}(?:\.\d{1,3}){3}\b|\[[0-9a-fA-F:.]+\]|\b(?:[0-9a-fA-F]{1,4}:){4,7}[0-9a-fA-F]{1,4}\b"
)
