"""The checks' HTTP transport (monitor/checks/transport.py), end to end on loopback: httpx's own
exception types with the OS or TLS error still chained underneath, a reset is not a timeout, the
peer certificate is there for its expiry even on a reused connection, no cookie is kept by a
shared client, and one instance never has more than its cap of requests in flight."""

from __future__ import annotations

import asyncio
import ssl
import time

import httpx
import pytest

from monitor import config
from monitor.checks import Clients, make_context
from monitor.checks.context import MAX_REQUESTS_IN_FLIGHT
from monitor.checks.http import CheckFailure, fetch
from monitor.checks.transport import AiohttpTransport

from .conftest import free_port
from .hostile import HostileServer, StallingTLSServer


class CookieServer(HostileServer):
    async def route_cookie(self, writer, path):
        await self._send(
            writer,
            b"HTTP/1.1 200 OK\r\nSet-Cookie: session=abc; Path=/\r\nContent-Length: 2\r\n\r\nok",
        )


@pytest.fixture(scope="module")
def server():
    with CookieServer() as s:
        yield s


def chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(out) < 10:
        out.append(seen)
        seen = seen.__cause__ or seen.__context__
    return out


async def get(url: str, verify: ssl.SSLContext | None = None, timeout: float = 2.0) -> httpx.Response:
    transport = AiohttpTransport(verify or ssl.create_default_context())
    async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
        response = await client.get(url)
        response.extensions.pop("network_stream", None)
        return response


def test_a_reset_mid_body_is_a_read_error_not_a_timeout(server):
    with pytest.raises(httpx.ReadError) as caught:
        asyncio.run(get(server.url + "/reset"))
    assert not isinstance(caught.value, httpx.TimeoutException)


def test_a_refused_connection_is_connect_error_with_the_os_error_chained():
    with pytest.raises(httpx.ConnectError) as caught:
        asyncio.run(get(f"http://127.0.0.1:{free_port()}/up"))
    assert any(isinstance(e, ConnectionRefusedError) for e in chain(caught.value)), chain(caught.value)


def test_an_unparsable_answer_is_a_protocol_error(server):
    with pytest.raises(httpx.RemoteProtocolError):
        asyncio.run(get(server.url + "/malformed"))


def test_a_silent_server_is_a_read_timeout(server):
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        asyncio.run(get(server.url + "/stall", timeout=0.5))
    assert time.monotonic() - started < 3


def test_a_stalled_tls_handshake_is_a_connect_timeout():
    with StallingTLSServer() as stalling, pytest.raises(httpx.ConnectTimeout):
        asyncio.run(get(f"https://127.0.0.1:{stalling.port}/up", timeout=0.5))


def test_an_unverifiable_certificate_is_connect_error_with_the_ssl_error_chained(tls_sim):
    url, _ = tls_sim
    with pytest.raises(httpx.ConnectError) as caught:
        asyncio.run(get(url + "/up"))
    assert any(isinstance(e, ssl.SSLCertVerificationError) for e in chain(caught.value))


def test_the_certificate_expiry_is_read_on_new_and_reused_connections(tls_sim):
    """aiohttp hands a connection back as soon as a short body is in: the transport keeps the
    TLS object of the answer's own connection, so the second (reused) request still has it."""
    url, cert = tls_sim
    settings = config.from_mapping(
        {"instances": [{"name": "tls", "url": url, "ca_bundle": str(cert)}]}, env={}
    )

    async def twice() -> list[float | None]:
        clients = Clients()
        ctx = make_context(settings.instances[0], clients)
        try:
            return [(await fetch(ctx, [], "live", "GET", "/up")).cert_days for _ in range(2)]
        finally:
            await clients.aclose()

    first, reused = asyncio.run(twice())
    assert first is not None and reused is not None
    assert 4 < first < 5.1 and 4 < reused < 5.1


def instances(url: str, *names: str, **extra) -> list:
    return config.from_mapping(
        {"instances": [{"name": n, "url": url, "timeout": "1s", **extra} for n in names]}, env={}
    ).instances


def test_instances_of_one_tls_setting_share_a_client_and_no_cookie(server):
    a, b = instances(server.url, "a", "b")
    (insecure,) = instances(server.url, "c", insecure=True)

    async def run() -> None:
        clients = Clients()
        ctx_a, ctx_b, ctx_c = (make_context(i, clients) for i in (a, b, insecure))
        assert ctx_a.client is ctx_b.client and ctx_c.client is not ctx_a.client
        await fetch(ctx_a, [], "live", "GET", "/cookie")
        await fetch(ctx_b, [], "live", "GET", "/cookie")
        await clients.aclose()
        assert ctx_a.client.is_closed and ctx_c.client.is_closed

    before = len(server.requests)
    asyncio.run(run())
    sent = [headers for _, headers in server.requests[before:]]
    assert len(sent) == 2 and all("cookie" not in h for h in sent), sent


def test_one_instance_never_has_more_than_its_cap_in_flight(server):
    (inst,) = instances(server.url, "busy")

    async def run() -> list[BaseException | object]:
        clients = Clients()
        ctx = make_context(inst, clients)
        try:
            tasks = [asyncio.ensure_future(fetch(ctx, [], "live", "GET", "/stall")) for _ in range(10)]
            await asyncio.sleep(0.5)
            in_flight.append(sum(1 for p, _ in server.requests[before:] if p.endswith("/stall")))
            return await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await clients.aclose()

    in_flight: list[int] = []
    before = len(server.requests)
    outcomes = asyncio.run(run())
    assert in_flight == [MAX_REQUESTS_IN_FLIGHT]
    assert all(isinstance(o, CheckFailure) and o.kind == "timeout" for o in outcomes[:MAX_REQUESTS_IN_FLIGHT])


def test_credentials_in_the_url_go_as_basic_auth(server):
    """An instance URL with user:password (an auth proxy in front) is sent as httpx sends it: the
    credentials as Basic auth, never refused for carrying both them and an Authorization header."""
    url = server.url.replace("http://", "http://monitor:pa55@") + "/cookie"
    response = asyncio.run(get(url))
    assert response.status_code == 200
    _, headers = server.requests[-1]
    assert headers["authorization"] == httpx.BasicAuth("monitor", "pa55")._auth_header
