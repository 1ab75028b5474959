"""A webhook receiver on loopback, the one every alerting test uses, and what a receiver checks."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.conftest import free_port

SECRET = "whsec-test-5up3r-s3cret"  # the webhook signing key the tests configure


class Receiver:
    """A webhook receiver on loopback: records every request; can refuse connections (`down()`),
    answer 503 without recording while `refusing`, hang, or answer any status."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.headers: dict[str, str] = {}
        self.hang = False
        self.refusing = False  # a receiver that is up but failing: 503, nothing recorded
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if receiver.refusing:
                    self.send_response(503)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.requests.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "body": body,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                        }
                    )
                if receiver.hang:
                    receiver.release.wait(60)
                try:
                    self.send_response(receiver.status)
                    for k, v in receiver.headers.items():
                        self.send_header(k, v)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass  # the sender is gone (killed mid-request)

            do_GET = do_POST = do_PUT = do_PATCH = _any  # GET: push targets and heartbeats

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def down(self) -> None:
        """Close the port: connections are refused until up()."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def stop(self) -> None:
        self.release.set()
        self.down()

    def close(self) -> None:
        self.stop()

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests]


def verify(secret: str, headers: dict[str, str], body: bytes, now: float, tolerance: float = 300) -> bool:
    """What a receiver does (docs/alerting.md): recompute the HMAC, compare in constant time, refuse old ones."""
    timestamp = headers["x-monitor-timestamp"]
    expected = (
        "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )
    return (
        hmac.compare_digest(expected, headers["x-monitor-signature"])
        and abs(now - int(timestamp)) <= tolerance
    )
