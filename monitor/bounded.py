"""Reading an HTTP answer's body with a hard cap on what arrives and on what it inflates to.

httpx decodes every layer of `Content-Encoding` itself, with no bound on the output of one chunk:
`gzip, gzip` turns a few KB into gigabytes before any count can stop it. So the raw stream is
read instead, at most one gzip or deflate layer is inflated here with zlib's `max_length`, and
both the bytes received and the bytes inflated stop at the cap.
"""

from __future__ import annotations

import zlib

import httpx

SUPPORTED = ("gzip", "x-gzip", "deflate")


class BodyError(Exception):
    """The body is over the cap or in an encoding we refuse; the text says which (one line)."""


def _codings(headers: httpx.Headers) -> list[str]:
    values = ",".join(headers.get_list("content-encoding"))
    return [c.strip().lower() for c in values.split(",") if c.strip() and c.strip().lower() != "identity"]


class _Inflater:
    def __init__(self, coding: str) -> None:
        self.coding = coding
        self.raw_deflate = False
        self.started = False
        self.obj = zlib.decompressobj(31 if coding != "deflate" else 15)

    def feed(self, data: bytes, room: int) -> bytes:
        """Up to `room` bytes inflated from `data`; more waiting means the body is over the cap."""
        if not self.started and self.coding == "deflate":
            self.started = True
            try:
                return self._inflate(data, room)
            except zlib.error:  # some servers send raw deflate without the zlib wrapper
                self.obj, self.raw_deflate = zlib.decompressobj(-15), True
        self.started = True
        return self._inflate(data, room)

    def _inflate(self, data: bytes, room: int) -> bytes:
        out = self.obj.decompress(data, room)
        if self.obj.unconsumed_tail:
            out += b"\0"  # there is more than `room`: one byte over says so without inflating it
        return out


async def read_capped(response: httpx.Response, limit: int) -> bytes:
    """The body, inflated from at most one gzip/deflate layer; BodyError past `limit` bytes either way."""
    codings = _codings(response.headers)
    if len(codings) > 1:
        raise BodyError(
            f"the body is encoded {len(codings)} times (Content-Encoding: {', '.join(codings)[:60]}); "
            "refused: at most one gzip or deflate layer is read"
        )
    if codings and codings[0] not in SUPPORTED:
        raise BodyError(
            f"the body's Content-Encoding {codings[0][:20]!r} is not supported (gzip or deflate only)"
        )
    inflater = _Inflater(codings[0]) if codings else None
    body = bytearray()
    received = 0
    try:
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received > limit:
                raise BodyError(f"body larger than {limit // 1024} KiB; stopped reading")
            body += inflater.feed(chunk, limit + 1 - len(body)) if inflater else chunk
            if len(body) > limit:
                word = "inflates to more" if inflater else "larger"
                raise BodyError(f"body {word} than {limit // 1024} KiB; stopped reading")
        if inflater is not None:
            body += inflater.obj.flush()[: limit + 1 - len(body)]
            if len(body) > limit:
                raise BodyError(f"body inflates to more than {limit // 1024} KiB; stopped reading")
    except zlib.error:
        raise BodyError(f"the body is not valid {codings[0]} data") from None
    return bytes(body)
