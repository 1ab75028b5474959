"""A misbehaving HTTP server on loopback, written on raw sockets so it can break every rule.

Each path is one behaviour. Every loop is bounded in bytes and time and stops by itself.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time

MiB = 1024 * 1024


class HostileServer:
    """Serves hostile answers on 127.0.0.1; `redirect_target` is another origin for cross-host tests."""

    def __init__(self, redirect_target: str = "http://127.0.0.1:9") -> None:
        self.redirect_target = redirect_target
        self.port = 0
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="hostile")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = (lines[0].split(" ") + ["", ""])[:3]
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        self.requests.append((f"{method} {path}", headers))
        handler = getattr(self, "route_" + path.strip("/").split("/")[-1].replace("-", "_"), None)
        if handler is None:
            handler = self.route_not_found
        try:
            await handler(writer, path)
        except (ConnectionError, OSError):
            pass
        finally:
            if not writer.is_closing():
                writer.close()

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    async def route_not_found(self, writer, path):
        await self._send(writer, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    async def route_endless(self, writer, path):
        await self._send(writer, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        chunk = b"x" * 65536
        deadline = time.monotonic() + 20
        sent = 0
        while sent < 200 * MiB and time.monotonic() < deadline:
            await self._send(writer, chunk)
            sent += len(chunk)

    async def route_big(self, writer, path):
        size = 50 * MiB
        await self._send(
            writer, f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n".encode()
        )
        chunk = b"y" * 65536
        for _ in range(size // len(chunk)):
            await self._send(writer, chunk)

    async def route_drip(self, writer, path):
        await self._send(writer, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n")
        for _ in range(100):
            await self._send(writer, b".")
            await asyncio.sleep(0.5)

    async def route_huge_header(self, writer, path):
        await self._send(
            writer, b"HTTP/1.1 200 OK\r\nX-Huge: " + b"h" * (2 * MiB) + b"\r\nContent-Length: 2\r\n\r\nok"
        )

    async def route_malformed(self, writer, path):
        await self._send(writer, b"HTTP/1.1 2OO NOPE\r\n\x00\x01garbage\r\n\r\n")

    async def route_invalid_utf8(self, writer, path):
        body = b'{"status": "pass", "name": "\xff\xfe\xfa"}'
        await self._send(
            writer,
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body,
        )

    async def route_invalid_json(self, writer, path):
        body = b'{"status": "pass", '
        await self._send(
            writer,
            b"HTTP/1.1 200 OK\r\nContent-Type: application/health+json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body,
        )

    async def route_loop_redirect(self, writer, path):
        await self._send(
            writer,
            f"HTTP/1.1 302 Found\r\nLocation: {path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode(),
        )

    async def route_cross_redirect(self, writer, path):
        target = self.redirect_target + "/steal"
        await self._send(
            writer,
            f"HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode(),
        )

    async def route_user(self, writer, path):  # /api/v1/user: redirect to another host
        await self.route_cross_redirect(writer, path)

    async def route_reset(self, writer, path):
        await self._send(writer, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def route_stall(self, writer, path):
        await asyncio.sleep(15)


class StallingTLSServer:
    """Accepts TCP connections and never answers the TLS handshake."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.conns.append(conn)
            except TimeoutError:
                continue
            except OSError:
                return

    def __enter__(self) -> StallingTLSServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self.conns:
            conn.close()
        self.sock.close()
