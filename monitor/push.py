"""Pushing results to monitors users already run: Uptime Kuma, Healthchecks, Gatus.

`Pusher.listener` hears every recorded result (it is one of `Monitor.listeners`). A result of a
target's instance (or of its one check) arms a short debounce, so that one round of checks landing
together makes one push; then the status is read from the latest results and sent in the target's
own task: bounded attempts with backoff, all within the instance's interval, each attempt under a
timeout, no redirect followed, the reply read at most REPLY_LIMIT bytes. A newer status replaces a
push still retrying. Nothing here ever waits inside a check's run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from monitor import __version__
from monitor.bounded import BodyError, read_capped
from monitor.config import Settings
from monitor.config.push import GatusPush, HealthchecksPush, PushBase, UptimeKumaPush
from monitor.models import Result, Status
from monitor.plural import plural
from monitor.sanitize import clean
from monitor.secrets import redact
from monitor.store import Transition

log = logging.getLogger("monitor.push")

DEBOUNCE = 1.0  # seconds: results of one round of checks landing this close make one push
MAX_ATTEMPTS = 4
BACKOFF = 1.0  # seconds before the second attempt, doubled after each
REPLY_LIMIT = 4096  # bytes of a receiver's reply read at most
MESSAGE_LIMIT = 200  # characters of the message sent


class PushError(Exception):
    """One attempt failed; the text is one clean line without the URL."""


@dataclass(frozen=True)
class Report:
    """What one push says: up or down, a message naming what is down or degraded, a latency."""

    up: bool
    message: str
    latency_ms: float | None


def summarize(results: list[Result], maintenance: bool = False) -> Report:
    """The status of a set of checks' latest results: down if any is down, else up."""
    down = [r for r in results if r.status == Status.DOWN]
    degraded = [r for r in results if r.status == Status.DEGRADED]
    latencies = [r.latency_ms for r in results if r.latency_ms is not None]
    latency = max(latencies) if latencies else None

    def named(items: list[Result]) -> str:
        return ", ".join(f"{r.check} ({r.kind or r.status}: {r.message})" for r in items)

    if maintenance:
        return Report(True, "maintenance window", latency)
    if down:
        text = f"down: {named(down)}" + (f"; degraded: {named(degraded)}" if degraded else "")
        return Report(False, _short(text), latency)
    if degraded:
        return Report(True, _short(f"degraded: {named(degraded)}"), latency)
    return Report(True, "up: " + ", ".join(r.check for r in results), latency)


def _short(text: str) -> str:
    return clean(redact(" ".join(text.split())))[:MESSAGE_LIMIT]


def _with_query(url: str, params: Mapping[str, str]) -> str:
    """The URL with these query parameters set (any already there with the same name replaced:
    Uptime Kuma shows its push URL with ?status=up&msg=OK&ping= appended)."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode([*kept, *params.items()])))


def join_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + path))


def request_for(target: PushBase, report: Report) -> tuple[str, str, dict[str, str], bytes]:
    """(method, URL, headers, body) of one push, in the target's format."""
    url = target.target_url()
    headers = {"User-Agent": f"2fauth-monitor/{__version__}", "Accept-Encoding": "identity"}
    if isinstance(target, UptimeKumaPush):
        ping = "" if report.latency_ms is None else str(round(report.latency_ms))
        status = "up" if report.up else "down"
        return "GET", _with_query(url, {"status": status, "msg": report.message, "ping": ping}), headers, b""
    if isinstance(target, HealthchecksPush):
        headers["Content-Type"] = "text/plain; charset=utf-8"
        return "POST", url if report.up else join_path(url, "/fail"), headers, report.message.encode()
    if isinstance(target, GatusPush):
        assert target.token is not None and target.key is not None
        headers["Authorization"] = f"Bearer {target.token.get_secret_value()}"
        duration = f"{round(report.latency_ms or 0)}ms"
        params = {
            "success": "true" if report.up else "false",
            "error": "" if report.up and not report.message.startswith("degraded") else report.message,
            "duration": duration,
        }
        path = f"/api/v1/endpoints/{target.key}/external"
        return "POST", _with_query(join_path(url, path), params), headers, b""
    raise TypeError(f"unknown push type {type(target).__name__}")


async def send_once(
    client: httpx.AsyncClient, method: str, url: str, headers: dict[str, str], body: bytes, timeout: float
) -> int:
    """One attempt; the status code of a 2xx answer, else PushError."""
    try:
        async with asyncio.timeout(timeout):  # one deadline for the whole exchange
            request = client.build_request(method, url, headers=headers, content=body or None)
            response = await client.send(request, stream=True)
            try:
                code = response.status_code
                with contextlib.suppress(BodyError):  # the status matters; the reply is cut at the cap
                    await read_capped(response, REPLY_LIMIT)
            finally:
                await response.aclose()
    except TimeoutError:
        raise PushError(f"no answer within {timeout:g}s") from None
    except httpx.HTTPError as exc:
        raise PushError(redact(clean(f"cannot reach it: {type(exc).__name__}: {exc}"))[:200]) from None
    if 300 <= code < 400:
        raise PushError(f"HTTP {code}, a redirect (not followed: configure the final URL)")
    if not 200 <= code < 300:
        raise PushError(f"HTTP {code}")
    return code


class Pusher:
    """Every `push:` target of a configuration; `listener` goes into `Monitor.listeners`."""

    def __init__(self, settings: Settings, latest: Mapping[tuple[str, str], Result]) -> None:
        self.settings = settings
        self.latest = latest
        self.targets = list(settings.push)
        self.sent = 0  # pushes answered 2xx, for tests and logs
        self._client: httpx.AsyncClient | None = None
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._maintenance: dict[str, bool] = {}
        self._failing: set[int] = set()

    async def start(self) -> None:
        if self.targets:
            self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
            log.info("pushing results to %s", plural(len(self.targets), "monitor"))

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def listener(self, result: Result, transition: Transition | None, maintenance: bool) -> None:
        """Arm the debounce of every target this result concerns; returns at once."""
        if self._client is None:
            return
        self._maintenance[result.instance] = maintenance
        loop = asyncio.get_running_loop()
        for i, target in enumerate(self.targets):
            if target.instance != result.instance or target.check not in (None, result.check):
                continue
            if i not in self._timers:
                self._timers[i] = loop.call_later(DEBOUNCE, self._fire, i)

    def describe(self, i: int) -> str:
        """How logs name a target: never by its URL."""
        target = self.targets[i]
        what = target.instance + (f"/{target.check}" if target.check else "")
        return f"push {i + 1} ({target.type}, {what})"

    def report(self, target: PushBase) -> Report | None:
        inst = self.settings.instance(target.instance)
        if inst is None:
            return None
        checks = [target.check] if target.check else inst.enabled_checks()
        results = [r for c in checks if (r := self.latest.get((inst.name, c))) is not None]
        if not results:
            return None
        return summarize(results, self._maintenance.get(inst.name, False))

    def _fire(self, i: int) -> None:
        self._timers.pop(i, None)
        report = self.report(self.targets[i])
        if report is None or self._client is None:
            return
        previous = self._tasks.pop(i, None)
        if previous is not None:
            previous.cancel()  # a newer status replaces one still being retried
        task = asyncio.create_task(self._push(i, report))
        self._tasks[i] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._tasks.get(i) is done:
                del self._tasks[i]

        task.add_done_callback(forget)

    async def _push(self, i: int, report: Report) -> None:
        target = self.targets[i]
        inst = self.settings.instance(target.instance)
        budget = inst.interval if inst is not None else 60.0
        deadline = time.monotonic() + budget
        method, url, headers, body = request_for(target, report)
        wait = BACKOFF
        assert self._client is not None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            left = deadline - time.monotonic()
            try:
                await send_once(self._client, method, url, headers, body, min(target.timeout, max(left, 0.1)))
            except PushError as exc:
                left = deadline - time.monotonic()
                if attempt == MAX_ATTEMPTS or left <= wait:
                    log.warning("%s failed after %s: %s", self.describe(i), plural(attempt, "attempt"), exc)
                    self._failing.add(i)
                    return
                log.debug("%s attempt %d failed: %s", self.describe(i), attempt, exc)
                await asyncio.sleep(wait)
                wait *= 2
                continue
            self.sent += 1
            if i in self._failing:
                self._failing.discard(i)
                log.info("%s delivered again", self.describe(i))
            return
