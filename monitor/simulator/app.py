"""The simulator's ASGI app: instance routing, connection-level faults, web pages, control surface.

Request path, in order: `/__sim/*` (control, never faulted) | `/s/<name>/...` or the bare root
(instance "default") -> count -> `down` | `slow` -> `maintenance` | `server_error` -> routes
(`/api/v1/*` in api.py, `/up`, probes, the SPA catch-all). `reset` and the Date header wrap `send`.

`down` resets each connection without an answer (SO_LINGER 0, then abort: the client sees
ECONNRESET). That needs uvicorn's transport; without it the connection is just closed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import struct
import time
from collections.abc import Iterable
from email.utils import formatdate
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from .accounts import Account, default_accounts
from .api import api_endpoint
from .faults import (
    DEFAULT_INSTANCE,
    FLAVOURS,
    RELEASES,
    FaultSpec,
    Flavour,
    Instance,
    Registry,
    Release,
    SimConfig,
    start_faults,
)
from .pages import live_probe, maintenance_page, ready_probe, spa_page, up_page
from .responses import SERVER_ERROR
from .tokens import DEFAULT_TOKEN

logger = logging.getLogger("monitor.simulator")
INSTANCE_PATH = re.compile(r"^/s/(?P<name>[A-Za-z0-9._~-]+)(?P<rest>/.*)?$")
CONTROL_PREFIX = "/__sim/"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def split_instance(path: str) -> tuple[str, str]:
    """(instance name, path inside it): `/s/home/up` -> ("home", "/up"); anything else is "default"."""
    found = INSTANCE_PATH.match(path)
    if found is None:
        return DEFAULT_INSTANCE, path
    return found["name"], found["rest"] or "/"


async def abort_connection(send: Send) -> bool:
    """Reset the client's connection (RST, no answer) through uvicorn's transport, if we can reach it."""
    transport: Any = getattr(getattr(send, "__self__", None), "transport", None)
    # duck-typed: uvloop's transports are not asyncio.Transport subclasses
    if not callable(getattr(transport, "abort", None)) or transport.is_closing():
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    await asyncio.sleep(0)  # let uvicorn see the disconnect before the app returns
    return True


def _dated(send: Send, instance: Instance | None, scope: Scope) -> Send:
    """Add the Date header from the instance's clock, and log the request at debug level."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            now = instance.now() if instance else time.time()
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
            headers.append((b"date", formatdate(now, usegmt=True).encode()))
            message = {**message, "headers": headers}
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s %s -> %s", scope["method"], scope["path"], message["status"])
        await send(message)

    return wrapped


def _reset_mid_body(send: Send, raw_send: Send) -> Send:
    """Send the head and half the body, then reset the connection."""
    start: Message | None = None
    body = bytearray()

    async def wrapped(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        body.extend(message.get("body", b""))
        if message.get("more_body", False):
            return
        await send(start)
        await send({"type": "http.response.body", "body": bytes(body[: len(body) // 2]), "more_body": True})
        if not await abort_connection(raw_send):
            raise ConnectionResetError("reset fault: cannot reach the transport, closing instead")

    return wrapped


class SimulatorApp(Starlette):
    """A Starlette app that also decides, per request, which simulated instance answers and how."""

    def __init__(self, registry: Registry, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        root = scope.get("root_path", "")
        path = scope["path"][len(root) :] if root and scope["path"].startswith(root) else scope["path"]
        if path.startswith(CONTROL_PREFIX):
            await super().__call__(scope, receive, _dated(send, None, scope))
            return
        started = time.perf_counter()
        name, inner = split_instance(path)
        instance = self.registry.get(name)
        instance.requests[inner] += 1
        if instance.has("down"):
            if not await abort_connection(send):
                raise ConnectionResetError("down fault: cannot reach the transport, closing instead")
            return
        if instance.has("slow"):
            await asyncio.sleep(instance.delay)
        prefix = "" if name == DEFAULT_INSTANCE and not path.startswith("/s/") else f"/s/{name}"
        scope = {
            **scope,
            "root_path": root + prefix,
            "path": root + prefix + inner,
            "sim.instance": instance,
            "sim.started": started,
        }
        raw_send = send
        send = _dated(send, instance, scope)
        if instance.has("reset"):
            send = _reset_mid_body(send, raw_send)
        early = self._early_answer(instance, scope)
        if early is not None:
            await early(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    @staticmethod
    def _early_answer(instance: Instance, scope: Scope) -> Response | None:
        """Answers Laravel gives before routing: maintenance mode, then a broken boot."""
        if instance.has("maintenance"):
            return maintenance_page(Request(scope))
        if instance.has("server_error"):
            return JSONResponse(SERVER_ERROR, status_code=500)
        return None


async def web_endpoint(request: Request) -> Response:
    """`/up`, the probes flavour's `/live` and `/ready`, and the SPA catch-all."""
    instance: Instance = request.scope["sim.instance"]
    path = "/" + request.path_params.get("any", "").strip("/")
    if request.method not in ("GET", "HEAD"):
        message = (
            f"The {request.method} method is not supported for route {path}. Supported methods: GET, HEAD."
        )
        return JSONResponse({"message": message}, status_code=405)
    if path == "/up":
        return up_page(request)
    if instance.config.flavour == "probes" and path == "/live":
        return live_probe(instance)
    if instance.config.flavour == "probes" and path == "/ready":
        return ready_probe(instance)
    return spa_page(instance)


def _registry(request: Request) -> Registry:
    app = request.app
    assert isinstance(app, SimulatorApp)
    return app.registry


async def control_state(request: Request) -> Response:
    """`GET /__sim/state?instance=NAME`."""
    instance = _registry(request).get(request.query_params.get("instance", DEFAULT_INSTANCE))
    return JSONResponse(instance.snapshot())


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json() if await request.body() else {}
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


async def control_faults(request: Request) -> Response:
    """`POST /__sim/faults {"instance", "faults", "delay", "skew"}`: replace an instance's faults."""
    try:
        body = await _json_object(request)
        faults = body.get("faults", [])
        if isinstance(faults, str) or not isinstance(faults, list):
            raise ValueError("faults must be a list of names")
        instance = _registry(request).get(str(body.get("instance", DEFAULT_INSTANCE)))
        instance.set_faults(faults, delay=body.get("delay"), skew=body.get("skew"))
    except (ValueError, TypeError) as error:
        return JSONResponse({"message": str(error)}, status_code=400)
    return JSONResponse(instance.snapshot())


async def control_reset(request: Request) -> Response:
    """`POST /__sim/reset [{"instance"}]`: clear faults, counters and accounts (all instances if none named)."""
    try:
        name = (await _json_object(request)).get("instance")
    except ValueError as error:
        return JSONResponse({"message": str(error)}, status_code=400)
    _registry(request).reset(None if name is None else str(name))
    return JSONResponse({"reset": name or "all"})


def create_app(
    *,
    flavour: Flavour = "upstream",
    faults: FaultSpec = (),
    tokens: Iterable[str] = (DEFAULT_TOKEN,),
    accounts: Iterable[Account] | None = None,
    throttle: int = 60,
    release: Release = "8.0.1",
    version: str | None = None,
    encryption: bool = True,
    skew: float = 120,
    delay: float = 3.0,
) -> Starlette:
    """A 2FAuth look-alike of `release` (8.0.1 or 5.4.3). `faults` is a list for the default instance,
    or a mapping by instance name. `version` is what the web page shows (default: the release);
    `encryption` is 2FAuth's "Protect sensitive data" (without it, `app_key` changes nothing)."""
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown flavour {flavour!r}; known: {', '.join(FLAVOURS)}")
    if release not in RELEASES:
        raise ValueError(f"unknown release {release!r}; known: {', '.join(RELEASES)}")
    config = SimConfig(
        flavour=flavour,
        tokens=frozenset([tokens] if isinstance(tokens, str) else tokens),
        accounts=tuple(accounts) if accounts is not None else default_accounts(),
        throttle=max(0, int(throttle)),
        release=release,
        version=version or release,
        encryption=bool(encryption),
        skew=float(skew),
        delay=float(delay),
        faults=start_faults(faults),
    )
    registry = Registry(config)
    registry.get(DEFAULT_INSTANCE)
    routes = [
        Route("/__sim/state", control_state, methods=["GET"]),
        Route("/__sim/faults", control_faults, methods=["POST"]),
        Route("/__sim/reset", control_reset, methods=["POST"]),
        Route("/api/v1", api_endpoint, methods=ALL_METHODS),
        Route("/api/v1/{rest:path}", api_endpoint, methods=ALL_METHODS),
        Route("/{any:path}", web_endpoint, methods=ALL_METHODS),
    ]
    return SimulatorApp(registry, routes=routes)
