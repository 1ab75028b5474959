"""What went wrong on the wire, in words naming `host:port`: refused, timed out, DNS, TLS, reset.

Told from the exception types and their causes (OSError errno, socket.gaierror, ssl errors), never
from a library's message text, so any transport that raises httpx's exception types with the
operating system's error as a cause (httpx's own, or an aiohttp-based one) is described alike.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx

from monitor.models import Kind

_REFUSED = {errno.ECONNREFUSED}
_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}
_RESET = {errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE}
_TIMED_OUT = {errno.ETIMEDOUT}
_DNS_NOT_FOUND = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
_TLS_HINTS = {
    "WRONG_VERSION_NUMBER": " (does the port speak plain HTTP? try http://)",
    "RECORD_LAYER_FAILURE": " (does the port speak plain HTTP? try http://)",
    "UNSUPPORTED_PROTOCOL": " (the server offers only TLS versions this monitor refuses)",
    "TLSV1_ALERT_PROTOCOL_VERSION": " (the server offers only TLS versions this monitor refuses)",
}


def host_port(url: str) -> str:
    """`host:port` of a URL, with the scheme's default port ("[::1]:443" for IPv6)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    host = f"[{host}]" if ":" in host else host
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port or (443 if parts.scheme == 'https' else 80)}"


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything behind it: causes, contexts, the members of exception groups,
    and the OS or certificate error an aiohttp exception carries."""
    pending, seen = [exc], set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [current.__cause__, current.__context__]
        inner += list(getattr(current, "exceptions", ()) or ())
        inner += [getattr(current, "os_error", None), getattr(current, "certificate_error", None)]
        pending.extend(e for e in inner if isinstance(e, BaseException))


def is_tls(exc: BaseException) -> bool:
    return any(isinstance(e, ssl.SSLError | ssl.CertificateError) for e in causes(exc))


def _tls_words(error: BaseException, where: str) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        detail = (
            getattr(error, "verify_message", None) or getattr(error, "reason", None) or "verification failed"
        )
        return f"TLS: the certificate of {where} is not trusted: {detail}"
    if isinstance(error, ssl.CertificateError):
        return f"TLS: the certificate of {where} is not valid for it: {error}"
    reason = getattr(error, "reason", None) or type(error).__name__
    return f"TLS handshake with {where} failed: {reason}{_TLS_HINTS.get(str(reason), '')}"


def _os_words(error: OSError, where: str) -> str | None:
    if isinstance(error, socket.gaierror):
        if error.errno in _DNS_NOT_FOUND:
            return f"DNS: the name {where.rsplit(':', 1)[0]} was not found"
        return f"DNS lookup of {where.rsplit(':', 1)[0]} failed: {error.strerror or error}"
    code = error.errno
    if isinstance(error, ConnectionRefusedError) or code in _REFUSED:
        return f"connection to {where} refused (nothing listens on that port?)"
    if code in _UNREACHABLE:
        return f"{where} is unreachable: {error.strerror or 'no route'}"
    if isinstance(error, ConnectionResetError | ConnectionAbortedError | BrokenPipeError) or code in _RESET:
        return f"connection to {where} reset by the server or a proxy"
    if isinstance(error, TimeoutError) or code in _TIMED_OUT:
        return f"connecting to {where} timed out"
    return None


def describe(exc: BaseException, url: str, what: str, timeout: float) -> tuple[Kind, str]:
    """The error kind and one line for a transport failure of `what` (e.g. "GET /up") sent to `url`."""
    where = host_port(url)
    chain = list(causes(exc))
    tls = [e for e in chain if isinstance(e, ssl.SSLError | ssl.CertificateError)]
    if tls:
        # the deepest is the ssl module's own: aiohttp's wrappers subclass ssl's errors without its fields
        return Kind.TLS, _tls_words(tls[-1], where)
    if isinstance(exc, httpx.ConnectTimeout):
        return Kind.TIMEOUT, f"connecting to {where} timed out after {timeout:g}s"
    if isinstance(exc, httpx.TimeoutException):
        return Kind.TIMEOUT, f"no complete answer to {what} from {where} within {timeout:g}s"
    for error in chain:
        if isinstance(error, OSError):
            words = _os_words(error, where)
            if words is not None:
                kind = Kind.TIMEOUT if words.startswith("connecting") else Kind.CONNECT
                return kind, words
    if isinstance(exc, httpx.RemoteProtocolError):
        return (
            Kind.CONNECT,
            f"{what}: {where} closed the connection or answered malformed HTTP: {_reason(exc)}",
        )
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return Kind.CONNECT, f"{what}: connection to {where} broken: {_reason(exc)}"
    return Kind.CONNECT, f"cannot connect to {where}: {_reason(exc)}"


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
