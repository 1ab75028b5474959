"""The checks' HTTP transport: httpx stays the API, aiohttp's pool and C parser carry the bytes.

httpx's own transport (httpcore over anyio) was about two thirds of a check's CPU; this one cuts a
check's cost by about a fifth (docs/benchmarks.md). The httpx-aiohttp package does the same, but its
error map is module-wide and reports a reset as a connect timeout, it drops the connection's TLS
object (so no certificate figure) and keeps aiohttp's cookie jar and decompression: every part of it
would need replacing, so the few lines are here, on aiohttp directly.

What checks/http.py relies on, and this transport keeps:
- errors are httpx's own types, each raised from aiohttp's error, whose cause is the OSError,
  socket.gaierror or ssl.SSLError underneath (so a message can name it):

      aiohttp                                       httpx
      ConnectionTimeoutError (connect, pool wait)   ConnectTimeout
      SocketTimeoutError, ServerTimeoutError        ReadTimeout
      ClientConnectorError (refused, DNS, TLS)      ConnectError
      ServerDisconnectedError                       RemoteProtocolError (closed before an answer)
      ClientResponseError (unparsable answer)       RemoteProtocolError
      ClientPayloadError, ClientOSError (reset)     ReadError (a reset is `connect`, not a timeout)
      other ClientConnectionError                   ReadError
      InvalidURL                                    UnsupportedProtocol

- the raw body: nothing is inflated here (monitor.bounded caps and inflates it), no cookie is kept
  (a check never needs one, and a shared client must not carry one instance's to another);
- `response.extensions["network_stream"].get_extra_info("ssl_object")`, for the certificate's expiry.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import httpx
from aiohttp.connector import Connection
from yarl import URL

KEEPALIVE_SECONDS = 90.0  # longer than the default 60 s interval, so a check reuses its connection

# most specific first: ClientConnectorError is an OSError too, ServerDisconnectedError a
# ClientConnectionError, ConnectionTimeoutError a ServerTimeoutError
_ERRORS: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ClientConnectionError, httpx.ReadError),
    (TimeoutError, httpx.ReadTimeout),
)


@contextmanager
def _as_httpx(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except (TimeoutError, aiohttp.ClientError) as exc:
        for theirs, ours in _ERRORS:
            if isinstance(exc, theirs):
                raise ours(str(exc) or type(exc).__name__, request=request) from exc
        raise httpx.TransportError(str(exc) or type(exc).__name__) from exc


class _Response(aiohttp.ClientResponse):
    """aiohttp's response, keeping the TLS object of its connection: aiohttp hands a connection
    back to the pool as soon as a short body is in, before the check asks for the certificate."""

    ssl_object: Any = None

    async def start(self, connection: Connection) -> aiohttp.ClientResponse:
        if self.url.scheme == "https" and connection.transport is not None:
            self.ssl_object = connection.transport.get_extra_info("ssl_object")
        return await super().start(connection)


class _PeerInfo:
    """What httpcore's network stream offers of a connection, as far as the checks ask."""

    __slots__ = ("_ssl_object",)

    def __init__(self, ssl_object: Any) -> None:
        self._ssl_object = ssl_object

    def get_extra_info(self, name: str) -> Any:
        return self._ssl_object if name == "ssl_object" else None


class _Body(httpx.AsyncByteStream):
    __slots__ = ("_request", "_response")

    def __init__(self, request: httpx.Request, response: aiohttp.ClientResponse) -> None:
        self._request = request
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx(self._request):
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        # the connection goes back to the pool, or is closed when the body was not read to its end
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp pool for every client of one TLS setting; its session is made on first use,
    inside the event loop that uses it."""

    def __init__(self, ssl_context: ssl.SSLContext, keepalive: float = KEEPALIVE_SECONDS) -> None:
        self._ssl = ssl_context
        self._keepalive = keepalive
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            ssl=self._ssl,
            limit=0,  # the scheduler's max_concurrency and each instance's cap bound what is open
            keepalive_timeout=self._keepalive,
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            trust_env=False,
            response_class=_Response,
            timeout=aiohttp.ClientTimeout(),
        )

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        given = request.extensions.get("timeout") or {}
        key = (given.get("connect"), given.get("read"), given.get("pool"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            # aiohttp's `connect` is the wait for a pooled connection plus making one
            connect = None if key[0] is None or key[2] is None else key[0] + key[2]
            timeout = aiohttp.ClientTimeout(sock_connect=key[0], sock_read=key[1], connect=connect)
            self._timeouts[key] = timeout
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._session is None or self._session.closed:
            self._session = self._open()
        body = request.content or None
        with _as_httpx(request):
            response = await self._session.request(
                request.method,
                # httpx has already turned the URL's user:password into an Authorization header;
                # aiohttp refuses a request that has both
                URL(str(request.url), encoded=True).with_user(None),
                headers=request.headers.multi_items(),
                data=body,
                allow_redirects=False,
                compress=None,
                timeout=self._timeout(request),
                server_hostname=request.extensions.get("sni_hostname"),
            )
        extensions: dict[str, Any] = {
            "http_version": b"HTTP/1.1",
            "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
        }
        if request.url.scheme == "https":
            extensions["network_stream"] = _PeerInfo(getattr(response, "ssl_object", None))
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(request, response),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
