"""A webhook receiver on loopback: records every delivery, or refuses them (503) while `refusing`.

`calls` keeps every request answered 2xx with its method (GET too: push targets and heartbeats);
`refuse_next` refuses that many requests first, `delay` holds each answer back that many seconds."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.calls: list[tuple[str, str, dict[str, str], bytes]] = []  # method, path?query, headers, body
        self.refusing = False
        self.refuse_next = 0
        self.refused = 0
        self.delay = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if outer.delay:
                    time.sleep(outer.delay)
                if outer.refusing or outer.refuse_next > 0:
                    outer.refuse_next = max(0, outer.refuse_next - 1)
                    outer.refused += 1
                    self.send_response(503)
                else:
                    outer.requests.append((self.path, dict(self.headers), body))
                    outer.calls.append((self.command, self.path, dict(self.headers), body))
                    self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
