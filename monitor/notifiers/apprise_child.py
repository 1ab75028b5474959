"""One Apprise notification in a child process: `python -m monitor.notifiers.apprise_child`.

Apprise sends through `requests` in its own threads, which read a whole reply into memory and
outlive any asyncio timeout (a 300 MB reply took the monitor to 976 MB; `json://` ran 36 s against
a 10 s timeout). Here the parent kills the child at the notifier's timeout, and every reply
`requests` receives is read at most REPLY_LIMIT bytes, received or inflated. The job arrives on stdin as JSON (so the URL is never in the process list); the
outcome leaves on stdout as one JSON line.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import apprise
from requests.adapters import HTTPAdapter

from monitor import secrets
from monitor.bounded import SUPPORTED, _Inflater
from monitor.notifiers.apprise import _notify_type

REPLY_LIMIT = 64 * 1024


def _cap_replies() -> None:
    """Make every `requests` reply stream, then read at most REPLY_LIMIT of it ourselves."""
    original = HTTPAdapter.send

    def send(self: Any, request: Any, stream: bool = False, **kwargs: Any) -> Any:
        response = original(self, request, stream=True, **kwargs)
        coding = response.headers.get("content-encoding", "").strip().lower()
        inflater = _Inflater(coding) if coding in SUPPORTED else None
        body = bytearray()
        received = 0
        try:
            for chunk in response.raw.stream(8192, decode_content=False):
                received += len(chunk)
                body += inflater.feed(chunk, REPLY_LIMIT + 1 - len(body)) if inflater else chunk
                if received > REPLY_LIMIT or len(body) > REPLY_LIMIT:
                    break
        except Exception:  # noqa: S110 - a broken or undecodable reply: keep what was read
            pass
        finally:
            response.raw.close()
        response._content = bytes(body[:REPLY_LIMIT])
        response._content_consumed = True
        response.headers.pop("content-encoding", None)
        return response

    HTTPAdapter.send = send  # type: ignore[method-assign, assignment]


def main() -> int:
    job = json.loads(sys.stdin.read())
    logging.getLogger("apprise").propagate = False
    _cap_replies()
    secrets.register(job["url"])
    app = apprise.Apprise()
    if not app.add(job["url"]):
        print(json.dumps({"ok": False, "detail": "the URL is not one Apprise can use"}))
        return 0
    result = app.notify(title=job["title"], body=job["body"], notify_type=_notify_type(job["event"]))
    lines = [e.message for e in result.logs()] if hasattr(result, "logs") else []
    print(json.dumps({"ok": bool(result), "detail": " ".join(" ".join(lines).split())[:300]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
