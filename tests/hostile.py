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
        handler = self.dispatch(path)
        try:
            await handler(writer, path)
        except (ConnectionError, OSError):
            pass
        finally:
            if not writer.is_closing():
                writer.close()

    def dispatch(self, path: str):
        """The route for a path: route_<last segment>, else 404."""
        return getattr(
            self, "route_" + path.strip("/").split("/")[-1].replace("-", "_"), self.route_not_found
        )

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


def _gzip_zeros(size: int, layers: int) -> bytes:
    """`size` zero bytes gzipped `layers` times, built in 1 MiB steps (never `size` in memory)."""
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zero = bytes(MiB)
    data = b"".join(packer.compress(zero) for _ in range(size // MiB)) + packer.flush()
    for _ in range(layers - 1):
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)
        data = packer.compress(data) + packer.flush()
    return data


class HostileTwoFAuth(HostileServer):
    """A hostile 2FAuth: the first path segment picks the attack, so one server serves every instance
    (`url` + "/<attack>" is an instance's base URL). Its API answers look like 2FAuth's, with one lie."""

    BOMB = 256 * MiB

    def __init__(self, canary_secret: str = "") -> None:
        super().__init__()
        self.canary_secret = canary_secret
        self._bombs: dict[int, bytes] = {}

    def bomb(self, layers: int) -> bytes:
        if layers not in self._bombs:
            self._bombs[layers] = _gzip_zeros(self.BOMB, layers)
        return self._bombs[layers]

    def dispatch(self, path: str):
        attack, _, rest = path.lstrip("/").partition("/")
        self.attack, self.rest = attack, "/" + rest
        return getattr(self, "attack_" + attack.replace("-", "_"), self.route_not_found)

    async def answer(self, writer, status: str, headers: dict[str, str], body: bytes) -> None:
        head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        await self._send(writer, head.encode("latin-1") + body)

    async def json(self, writer, data, status: str = "200 OK", **headers: str) -> None:
        import json

        body = json.dumps(data).encode()
        await self.answer(writer, status, {"Content-Type": "application/json", **headers}, body)

    async def attack_gzip_twice(self, writer, path):
        await self.answer(writer, "200 OK", {"Content-Encoding": "gzip, gzip"}, self.bomb(2))

    async def attack_gzip_bomb(self, writer, path):
        await self.answer(writer, "200 OK", {"Content-Encoding": "gzip"}, self.bomb(1))

    async def attack_gzip_ok(self, writer, path):
        import gzip

        body = gzip.compress(b'{"status": "pass"}')
        await self.answer(
            writer, "200 OK", {"Content-Type": "application/json", "Content-Encoding": "gzip"}, body
        )

    async def attack_brotli(self, writer, path):
        await self.answer(writer, "200 OK", {"Content-Encoding": "br"}, b"\x1b\x03\x00")

    async def attack_location(self, writer, path):
        target = {
            "/javascript": "javascript:alert(document.cookie)",
            "/data": "data:text/html,<script>alert(1)</script>",
            "/port": "http://127.0.0.1:99999/up",
            "/ipv6": "http://[::1/up",
        }[self.rest]
        await self.answer(writer, "302 Found", {"Location": target}, b"")

    async def attack_controls(self, writer, path):
        name = "db\x1b]0;owned\x07\x1b[2J\r\n2026-01-01 00:00:00 ERROR forged line\x00\u202egnp.exe"
        await self.json(
            writer, {"status": "fail", "checks": [{"name": name, "status": "fail"}]}, "503 Unavailable"
        )

    async def attack_components(self, writer, path):
        checks = [{"name": f"component-{i:05d}-" + "n" * 30, "status": "fail"} for i in range(11_500)]
        await self.json(writer, {"status": "fail", "checks": checks}, "503 Unavailable")

    async def attack_version(self, writer, path):
        page = '<html><div id="app"></div><script>var appVersion = "5.' + "9" * 49_000 + '";</script></html>'
        await self.answer(writer, "200 OK", {"Content-Type": "text/html"}, page.encode())

    async def attack_retry_after(self, writer, path):
        await self.json(
            writer, {"message": "Too Many Attempts."}, "429 Too Many Requests", **{"Retry-After": "1e308"}
        )

    async def _api(self, writer, account: dict):
        import time as _time

        from monitor import otp

        if self.rest.startswith("/api/v1/user"):
            await self.json(writer, {"id": 1, "name": "canary", "email": "c@example.org"})
        elif self.rest.startswith("/api/v1/twofaccounts/otp"):
            now = int(_time.time())
            code = otp.totp(self.canary_secret, now)
            await self.json(writer, {"password": code, "otp_type": "totp", "generated_at": now, "period": 30})
        elif self.rest.startswith("/api/v1/twofaccounts"):
            now = int(_time.time())
            await self.json(
                writer,
                [
                    {
                        "id": 1,
                        "otp_type": "totp",
                        **account,
                        "otp": {"password": "123456", "generated_at": now},
                    }
                ],
            )
        else:
            await self.route_not_found(writer, path=self.rest)

    async def attack_digits(self, writer, path):
        await self._api(writer, {"digits": 20_000_000, "algorithm": "sha1", "period": 30})

    async def attack_period(self, writer, path):
        await self._api(writer, {"digits": 6, "algorithm": "sha1", "period": 10**30})

    async def attack_algorithm(self, writer, path):
        await self._api(writer, {"digits": 6, "algorithm": "whirlpool", "period": 30})

    # --- as a notifier's receiver (webhook and Apprise json:// post here) ---

    async def attack_hook_bomb(self, writer, path):
        await self.answer(writer, "500 Internal Server Error", {"Content-Encoding": "gzip"}, self.bomb(1))

    async def attack_hook_twice(self, writer, path):
        await self.answer(
            writer, "500 Internal Server Error", {"Content-Encoding": "gzip, gzip"}, self.bomb(2)
        )

    async def attack_hook_huge(self, writer, path):
        size = 300 * MiB
        head = f"HTTP/1.1 500 Internal Server Error\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
        await self._send(writer, head.encode())
        chunk = b"e" * 65536
        deadline = time.monotonic() + 30
        for _ in range(size // len(chunk)):
            if time.monotonic() > deadline:
                break
            await self._send(writer, chunk)

    async def attack_hook_drip(self, writer, path):
        await self._send(writer, b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100\r\n\r\n")
        for _ in range(100):  # 50 s at most, far past any notifier timeout
            await self._send(writer, b".")
            await asyncio.sleep(0.5)
