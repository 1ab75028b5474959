"""Connection errors in words naming host:port: refused, timed out, DNS, TLS. Told from exception
types and their causes, so any transport raising httpx's types with the OS error behind them reads
the same; then the same words end to end over real loopback connections."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl

import httpx
import pytest

from monitor import config, simulator
from monitor.checks.neterrors import describe, host_port
from monitor.models import Kind
from monitor.scheduler import run_all_once

from .conftest import free_port, instance_config

URL = "https://2fauth.example.com/sub"


def chained(outer: BaseException, *inner: BaseException) -> BaseException:
    """outer raised from inner[0], raised from inner[1]..., as httpx, httpcore and anyio chain them."""
    current = outer
    for cause in inner:
        current.__cause__ = cause
        current = cause
    return outer


def anyio_group(*errors: OSError) -> OSError:
    """anyio's 'All connection attempts failed', raised from a group of one error per address."""
    return chained(OSError("All connection attempts failed"), ExceptionGroup("multiple", list(errors)))


class AiohttpLike(OSError):
    """What aiohttp raises: the OS error in an attribute, not as a cause."""

    def __init__(self, os_error: OSError) -> None:
        super().__init__(os_error.errno, "Cannot connect to host")
        self.os_error = os_error


@pytest.mark.parametrize(
    "exc, kind, words",
    [
        (
            chained(httpx.ConnectError("All connection attempts failed"), anyio_group(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))),
            Kind.CONNECT,
            "connection to 2fauth.example.com:443 refused (nothing listens on that port?)",
        ),
        (
            chained(httpx.ConnectError("x"), socket.gaierror(socket.EAI_NONAME, "Name or service not known")),
            Kind.CONNECT,
            "DNS: the name 2fauth.example.com was not found",
        ),
        (
            chained(httpx.ConnectError("x"), socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")),
            Kind.CONNECT,
            "DNS lookup of 2fauth.example.com failed: Temporary failure in name resolution",
        ),
        (httpx.ConnectTimeout("x"), Kind.TIMEOUT, "connecting to 2fauth.example.com:443 timed out after 10s"),
        (httpx.ReadTimeout("x"), Kind.TIMEOUT, "no complete answer to GET /up from 2fauth.example.com:443 within 10s"),
        (
            chained(httpx.ConnectError("x"), anyio_group(OSError(errno.EHOSTUNREACH, "No route to host"), OSError(errno.ENETUNREACH, "Network is unreachable"))),
            Kind.CONNECT,
            "2fauth.example.com:443 is unreachable: No route to host",
        ),
        (
            chained(httpx.ConnectError("x"), AiohttpLike(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))),
            Kind.CONNECT,
            "connection to 2fauth.example.com:443 refused (nothing listens on that port?)",
        ),
        (
            chained(httpx.ReadError("x"), ConnectionResetError(errno.ECONNRESET, "reset")),
            Kind.CONNECT,
            "connection to 2fauth.example.com:443 reset by the server or a proxy",
        ),
        (
            chained(httpx.RemoteProtocolError("Server disconnected without sending a response.")),
            Kind.CONNECT,
            "GET /up: 2fauth.example.com:443 closed the connection or answered malformed HTTP: "
            "Server disconnected without sending a response.",
        ),
    ],
)  # fmt: skip
def test_what_happened_is_told_from_the_exception_and_its_causes(exc, kind, words):
    assert describe(exc, URL, "GET /up", 10) == (kind, words)


def test_tls_failures_say_which():
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message, verify.reason = "certificate has expired", "CERTIFICATE_VERIFY_FAILED"
    assert describe(chained(httpx.ConnectError("x"), verify), URL, "GET /up", 10) == (
        Kind.TLS,
        "TLS: the certificate of 2fauth.example.com:443 is not trusted: certificate has expired",
    )
    plain = ssl.SSLError(1, "wrong version number")
    plain.reason = "WRONG_VERSION_NUMBER"
    kind, words = describe(chained(httpx.ConnectError("x"), plain), URL, "GET /up", 10)
    assert kind == Kind.TLS
    assert words == (
        "TLS handshake with 2fauth.example.com:443 failed: WRONG_VERSION_NUMBER "
        "(does the port speak plain HTTP? try http://)"
    )


def test_host_port_uses_the_schemes_default_and_brackets_ipv6():
    assert host_port("http://2fauth.lan") == "2fauth.lan:80"
    assert host_port("https://2fauth.lan:8443/x") == "2fauth.lan:8443"
    assert host_port("http://[::1]:8000") == "[::1]:8000"


# --- end to end, over real loopback connections -----------------------------------------------


def live_message(url: str, **extra) -> tuple[str, str]:
    settings = config.from_mapping({"instances": [instance_config(url, token=False, **extra)]}, env={})
    live = asyncio.run(run_all_once(settings))[0]
    return str(live.kind), live.message


def test_a_closed_port_is_refused_naming_it():
    port = free_port()
    assert live_message(f"http://127.0.0.1:{port}") == (
        "connect",
        f"connection to 127.0.0.1:{port} refused (nothing listens on that port?)",
    )


def test_an_untrusted_certificate_names_the_host_and_why(tls_sim):
    url, _ = tls_sim
    kind, message = live_message(url)
    assert kind == "tls"
    assert (
        message
        == f"TLS: the certificate of {url.removeprefix('https://')} is not trusted: self-signed certificate"
    )


def test_tls_spoken_to_a_plain_http_port_says_so(sim):
    kind, message = live_message(sim.url.replace("http://", "https://"))
    assert kind == "tls"
    assert message.startswith(f"TLS handshake with {sim.url.removeprefix('http://')} failed")
    assert "plain HTTP" in message


def test_a_silent_server_is_a_timeout_naming_it():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)  # accepts into the backlog, never answers
        port = server.getsockname()[1]
        kind, message = live_message(f"http://127.0.0.1:{port}", timeout="1s", interval="2s")
    assert kind == "timeout"
    assert f"127.0.0.1:{port}" in message and "1s" in message


@pytest.mark.parametrize("release, v8_hint", [("8.0.1", True), ("5.4.3", False)])
def test_the_v8_token_hint_only_on_v8(release, v8_hint):
    sim = simulator.start_in_thread(release=release)
    try:
        settings = config.from_mapping(
            {"instances": [instance_config(sim.url) | {"token": "not-a-valid-token"}]},
            env={},
        )
        results = {r.check: r for r in asyncio.run(run_all_once(settings))}
    finally:
        sim.stop()
    totp = results["totp"]
    assert (str(totp.kind), totp.http_status) == ("auth", 401)
    assert "missing, expired or revoked" in totp.message
    assert ("v8" in totp.message) is v8_hint, totp.message
