"""Jobs, jitter, concurrency, reload and stop: one APScheduler job per check per instance.

A run: acquire the global semaphore, run the check (never raises), record it in the store,
hand the result and any state change to the listeners (metrics, push); alerting is evaluated
inside the store's write of the results (Store.on_write). APScheduler's
`max_instances=1` keeps two runs of one check from overlapping.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.checklog import ResultLog
from monitor.checks import Clients, InstanceContext, artifacts_dir, make_context, run_check
from monitor.config import Instance, Settings
from monitor.models import Result
from monitor.plural import plural
from monitor.store import Store, Transition

log = logging.getLogger("monitor.scheduler")

COMMIT_DELAY = 0.05  # seconds: results finishing this close together share one write
CLOCK_JUMP_THRESHOLD = 5.0  # seconds of wall-clock change beyond the monotonic clock

WAKE_QUANTUM = 0.02  # seconds: due runs this close together start in one turn of the scheduler

Listener = Callable[[Result, Transition | None, bool], Awaitable[None] | None]


class LoopScheduler(AsyncIOScheduler):
    """APScheduler's asyncio scheduler, woken straight from the event loop's timer.

    The stock one reaches its own loop through `call_soon_threadsafe` at every due time (a write
    to the loop's self-pipe and one more turn of the loop), and with jittered intervals every run
    has a due time of its own: one wake-up per run. Here the timer runs the due jobs itself, and
    waits WAKE_QUANTUM longer so that runs due within it start together (at most 20 ms late).
    """

    def _start_timer(self, wait_seconds: float | None) -> None:
        self._stop_timer()
        if wait_seconds is not None:
            self._timeout = self._eventloop.call_later(wait_seconds + WAKE_QUANTUM, self._wake_in_loop)

    def _wake_in_loop(self) -> None:
        self._timeout = None
        self._start_timer(self._process_jobs())


@dataclass
class Stats:
    """What the monitor knows about its own work, for /metrics and /ready."""

    runs: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    skipped_overlap: Counter[tuple[str, str]] = field(default_factory=Counter)
    lags: deque[float] = field(default_factory=lambda: deque(maxlen=2048))
    lag_total: float = 0.0
    lag_count: int = 0
    last_run_at: float | None = None  # wall clock
    last_run_monotonic: float | None = None
    started_at: float = field(default_factory=time.time)
    started_monotonic: float = field(default_factory=time.monotonic)

    def add_lag(self, seconds: float) -> None:
        self.lags.append(seconds)
        self.lag_total += seconds
        self.lag_count += 1


async def run_all_once(settings: Settings) -> list[Result]:
    """Every enabled check of every instance once (the `check` command); no store, no scheduler."""
    semaphore = asyncio.Semaphore(settings.max_concurrency)
    clients = Clients()
    artifacts = artifacts_dir(settings.storage.path)

    async def one_instance(inst: Instance) -> list[Result]:
        ctx = make_context(inst, clients, artifacts=artifacts)
        out = []
        for check in inst.enabled_checks():
            async with semaphore:
                out.append(await run_check(ctx, check))
        return out

    try:
        groups = await asyncio.gather(*(one_instance(i) for i in settings.instances))
    finally:
        await clients.aclose()
    return [r for group in groups for r in group]


class Monitor:
    def __init__(self, settings: Settings, store: Store | None) -> None:
        self.settings = settings
        self.store = store
        self.contexts: dict[str, InstanceContext] = {}
        self.clients = Clients()  # one HTTP client per TLS setting, shared by the instances
        self.latest: dict[tuple[str, str], Result] = {}
        self.listeners: list[Listener] = []
        self.result_log = ResultLog()
        self.in_maintenance: Callable[[str, float], bool] = lambda instance, at: False
        self.stats = Stats()
        self.scheduler = LoopScheduler(timezone=UTC)
        self.scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED | EVENT_JOB_MAX_INSTANCES)
        self._semaphore: asyncio.Semaphore | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._clock_task: asyncio.Task[None] | None = None
        self._commit_waiter: asyncio.Future[None] | None = None
        self._commit_timer: asyncio.TimerHandle | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._semaphore = asyncio.Semaphore(self.settings.max_concurrency)
        total = sum(len(i.enabled_checks()) for i in self.settings.instances)
        for inst in self.settings.instances:
            self._add_instance(inst, spread=min(inst.interval, 2 + total / 200))
        if self.store is not None:
            self.scheduler.add_job(
                self._prune,
                IntervalTrigger(seconds=self.settings.storage.prune_interval),
                id="_prune",
                next_run_time=datetime.now(UTC) + timedelta(seconds=30),
                max_instances=1,
                coalesce=True,
            )
            self.scheduler.add_job(
                self._retry_flush, IntervalTrigger(seconds=2), id="_flush", max_instances=1, coalesce=True
            )
        self.scheduler.start()
        self._clock_task = asyncio.create_task(self._watch_clock())
        log.info(
            "monitoring %s, %s", plural(len(self.settings.instances), "instance"), plural(total, "check")
        )

    async def stop(self, timeout: float = 8.0) -> None:
        """Stop scheduling, let in-flight checks finish (bounded), write what is queued."""
        self._stopping = True
        if self._clock_task is not None:
            self._clock_task.cancel()
        if self.scheduler.running:
            self.scheduler.pause()  # no new runs; shutdown() would cancel the runs in flight
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=timeout)
            for task in pending:
                task.cancel()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._commit_timer is not None:
            self._commit_timer.cancel()
            self._group_flush()
        if self.store is not None:
            self.store.flush()
        for ctx in self.contexts.values():
            await ctx.aclose()
        self.contexts.clear()
        await self.clients.aclose()

    def apply(self, new: Settings) -> list[str]:
        """Apply a reloaded configuration without a restart; returns what changed, one line each."""
        changes: list[str] = []
        old_by_name = {i.name: i for i in self.settings.instances}
        new_by_name = {i.name: i for i in new.instances}
        for name, inst in old_by_name.items():
            if name not in new_by_name or new_by_name[name] != inst:
                self._remove_instance(name)
                if name not in new_by_name:
                    changes.append(f"removed instance {name}")
                    if self.store is not None:
                        self.store.writer.forget(name)
        for name, inst in new_by_name.items():
            if name not in old_by_name:
                changes.append(f"added instance {name}")
            elif old_by_name[name] != inst:
                changes.append(f"changed instance {name}")
            else:
                continue
            self._add_instance(inst, spread=min(inst.interval, 2.0))
        if changes:  # a changed CA bundle or trust leaves a client nobody uses
            self._track(self.clients.close_unused([c.client for c in self.contexts.values()]))
        if new.max_concurrency != self.settings.max_concurrency:
            self._semaphore = asyncio.Semaphore(new.max_concurrency)
            changes.append(f"max_concurrency {new.max_concurrency}")
        self.settings = new
        return changes

    # --- jobs --------------------------------------------------------------------------------

    def _add_instance(self, inst: Instance, spread: float) -> None:
        artifacts = artifacts_dir(self.store.path) if self.store is not None else None
        self.contexts[inst.name] = make_context(inst, self.clients, artifacts=artifacts)
        self._schedule_checks(inst, spread)

    def _schedule_checks(self, inst: Instance, spread: float) -> None:
        for check in inst.enabled_checks():
            interval = inst.check_interval(check)
            first = datetime.now(UTC) + timedelta(seconds=random.uniform(0, max(spread, 0.0)))
            self.scheduler.add_job(
                self.run_job,
                IntervalTrigger(seconds=interval, jitter=min(interval * 0.1, 10.0)),
                args=(inst.name, check),
                id=f"{inst.name}:{check}",
                name=f"{inst.name}/{check}",
                next_run_time=first,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, int(interval)),
                replace_existing=True,
            )

    def _remove_instance(self, name: str) -> None:
        for job in self.scheduler.get_jobs():
            if job.id.startswith(f"{name}:"):
                job.remove()
        ctx = self.contexts.pop(name, None)
        if ctx is not None:
            self._track(ctx.aclose())
        for key in [k for k in self.latest if k[0] == name]:
            del self.latest[key]
        self.result_log.forget(name)

    def _track(self, work: Awaitable[None]) -> None:
        """Run `work` beside the checks; `stop` waits for it like a check in flight."""
        task = asyncio.ensure_future(work)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    def _on_submitted(self, event: JobSubmissionEvent) -> None:
        if event.code == EVENT_JOB_MAX_INSTANCES:
            self.stats.skipped_overlap[tuple(event.job_id.split(":", 1))] += 1
            return
        if event.job_id.startswith("_"):
            return
        now = datetime.now(UTC)
        for scheduled in event.scheduled_run_times:
            self.stats.add_lag(max(0.0, (now - scheduled).total_seconds()))

    async def run_job(self, instance: str, check: str) -> None:
        """One scheduled run: check, record, notify listeners. Never raises."""
        if self._stopping:
            return
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            ctx = self.contexts.get(instance)
            if ctx is None:
                return
            assert self._semaphore is not None
            async with self._semaphore:
                result = await run_check(ctx, check)
            await self.handle_result(result)
        except Exception:
            log.exception("run of %s/%s failed", instance, check)
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def run_now(self, instance: str, check: str) -> Result | None:
        """Run one check at once, outside its schedule (alerting's retry); None when stopping or
        when the instance is gone. The caller hands the result to `handle_result`."""
        ctx = self.contexts.get(instance)
        if self._stopping or ctx is None:
            return None
        return await run_check(ctx, check)

    async def handle_result(self, result: Result) -> None:
        """Record a result, log it when it is a first or a change (checklog.py), tell the listeners."""
        key = (result.instance, result.check)
        self.latest[key] = result
        self.stats.runs[(result.instance, result.check, str(result.status))] += 1
        self.stats.last_run_at = time.time()
        self.stats.last_run_monotonic = time.monotonic()
        maintenance = self.in_maintenance(result.instance, result.started_at)
        transition = None
        if self.store is not None:
            transition = self.store.record(result, maintenance=maintenance)
            if self.store.healthy:  # while the database fails, the periodic retry writes the queue
                await self._commit()
        self.result_log.note(result, maintenance=maintenance)
        for listener in self.listeners:
            try:
                out = listener(result, transition, maintenance)
                if inspect.isawaitable(out):
                    await out
            except Exception:
                log.exception("listener failed for %s/%s", result.instance, result.check)

    async def _commit(self) -> None:
        """Return once the results recorded so far are written (group commit).

        Results that finish within COMMIT_DELAY share one write transaction instead of one each
        (alerting's evaluation of them included), and the listeners still run only after theirs is
        committed.
        """
        if self._commit_waiter is None:
            loop = asyncio.get_running_loop()
            self._commit_waiter = loop.create_future()
            self._commit_timer = loop.call_later(COMMIT_DELAY, self._group_flush)
        await asyncio.shield(self._commit_waiter)

    def _group_flush(self) -> None:
        waiter, self._commit_waiter, self._commit_timer = self._commit_waiter, None, None
        try:
            if self.store is not None and self.store.healthy:
                self.store.flush()
        finally:
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def _prune(self) -> None:
        assert self.store is not None
        storage = self.settings.storage
        try:
            deleted = self.store.prune(
                raw_retention=storage.raw_retention,
                rollup_retention=storage.rollup_retention,
                success_retention=storage.success_retention,
            )
            if any(deleted.values()):
                log.info("pruned %s", ", ".join(f"{n} {t}" for t, n in deleted.items() if n))
        except Exception as exc:
            log.error("prune failed: %s", exc)

    async def _retry_flush(self) -> None:
        assert self.store is not None
        if self.store.writer.pending:
            self.store.flush()

    async def _watch_clock(self, every: float = 1.0) -> None:
        """Reschedule every check when the wall clock jumps.

        APScheduler 3 compares due times with the wall clock: a jump back by an hour would pause
        every check for an hour, a jump forward would count runs as missed. The gap between the
        wall clock and the monotonic one (which asyncio's sleeps use) shows a jump either way.
        """
        offset = time.time() - time.monotonic()
        while True:
            await asyncio.sleep(every)
            new = time.time() - time.monotonic()
            jump = new - offset
            offset = new
            if abs(jump) < CLOCK_JUMP_THRESHOLD or self._stopping:
                continue
            log.warning("the system clock jumped %+.0fs; rescheduling every check from now", jump)
            for inst in self.settings.instances:
                self._schedule_checks(inst, spread=min(inst.interval, 2.0))

    # --- for /ready --------------------------------------------------------------------------

    def scheduler_fresh(self, now_monotonic: float | None = None) -> bool:
        """Has a check run within two of the shortest intervals (or since start)?"""
        now_monotonic = time.monotonic() if now_monotonic is None else now_monotonic
        shortest = min((i.interval for i in self.settings.instances), default=60.0)
        last = self.stats.last_run_monotonic
        if last is None:
            return now_monotonic - self.stats.started_monotonic < shortest * 2 + 10
        return now_monotonic - last < shortest * 2 + 10
