"""The browser check's child process: started without blocking the event loop, fed its job on stdin,
watched for memory, and killed with every process it started (Chromium included) at its deadline.

Memory: RLIMIT_AS cannot bound Chromium (V8 and the zygote reserve terabytes of address space they
never touch), so the bound is the proportional set size (PSS, /proc/PID/smaps_rollup) of the child
and all its descendants, read every half second off the event loop; over `max_memory_mb` the whole
tree is killed. V8's own heap is capped with --js-flags=--max-old-space-size, so a runaway script
crashes its renderer first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHILD_MODULE = "monitor.checks.browser_child"
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding monitor/
KILL_GRACE = 5.0  # seconds the child gets past its own deadline before it is killed
POLL = 0.5  # seconds between memory readings
MAX_LINE = 1 << 20  # bytes of one line from the child
MAX_STDERR = 4096


@dataclass
class ChildOutcome:
    """What the child said (its step lines and its last line) and why it ended."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] | None = None
    killed_for: str | None = None  # "timeout" or "memory"
    peak_mb: float = 0.0
    stderr: str = ""
    returncode: int | None = None


def _children() -> dict[int, list[int]]:
    """ppid -> pids, read from /proc (Linux)."""
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        out.setdefault(ppid, []).append(int(entry))
    return out


def process_tree(root: int) -> list[int]:
    """root and every descendant now alive. Playwright starts Chromium in a session of its own,
    so the child's process group alone would miss it."""
    children = _children()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_pss_mb(pids: list[int]) -> float:
    total_kb = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total_kb += int(line.split()[1])
                        break
        except (OSError, ValueError, IndexError):
            continue
    return total_kb / 1024


def kill_tree(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def child_env(home: str) -> dict[str, str]:
    """A bare environment: the monitor's own (tokens in TWOFAUTH_TOKEN...) is not the child's."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "TMPDIR": home,  # Playwright's fresh profile lands here and goes with the folder
        "LANG": "C.UTF-8",
        "PYTHONPATH": PACKAGE_ROOT,
        "PYTHONDONTWRITEBYTECODE": "1",
    }


class Child:
    """One run of the child: start, feed, read, watch, and always leave nothing behind."""

    def __init__(
        self, job: dict[str, Any], deadline: float, max_memory_mb: int, grace: float = KILL_GRACE
    ) -> None:
        self.job, self.deadline, self.max_memory_mb, self.grace = job, deadline, max_memory_mb, grace
        self.outcome = ChildOutcome()
        self.seen: set[int] = set()
        self.proc: asyncio.subprocess.Process | None = None

    async def run(self, on_step: Callable[[dict[str, Any]], None] | None = None) -> ChildOutcome:
        with tempfile.TemporaryDirectory(prefix="2fauth-monitor-browser-") as home:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                CHILD_MODULE,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                env=child_env(home),
                cwd=home,
                limit=MAX_LINE,
            )
            watch = asyncio.create_task(self._watch_memory())
            errors = asyncio.create_task(self._read_stderr())
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps(self.job).encode() + b"\n")
                await self.proc.stdin.drain()
                self.proc.stdin.close()
                try:
                    async with asyncio.timeout(self.deadline + self.grace):
                        await self._read_stdout(on_step)
                        self.outcome.returncode = await self.proc.wait()
                except TimeoutError:
                    self.outcome.killed_for = self.outcome.killed_for or "timeout"
            finally:
                watch.cancel()
                await self._reap()
                errors.cancel()
        return self.outcome

    async def _read_stdout(self, on_step: Callable[[dict[str, Any]], None] | None) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            try:
                line = await self.proc.stdout.readline()
            except ValueError:  # a line over MAX_LINE
                continue
            if not line:
                return
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            if message.get("done"):
                self.outcome.final = message
            elif "step" in message:
                self.outcome.steps.append(message)
                if on_step:
                    on_step(message)

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(4096):
            self.outcome.stderr = (self.outcome.stderr + chunk.decode(errors="replace"))[-MAX_STDERR:]

    async def _watch_memory(self) -> None:
        assert self.proc is not None
        while True:
            try:
                pids = await asyncio.to_thread(process_tree, self.proc.pid)
            except OSError:  # no /proc: no memory bound, the timeout still holds
                return
            self.seen.update(pids)
            used = await asyncio.to_thread(tree_pss_mb, pids)
            self.outcome.peak_mb = max(self.outcome.peak_mb, used)
            if used > self.max_memory_mb:
                self.outcome.killed_for = "memory"
                kill_tree(pids)
                return
            await asyncio.sleep(POLL)

    async def _reap(self) -> None:
        """Kill whatever of the tree is left (Chromium outlives a killed driver) and wait for it."""
        assert self.proc is not None
        pids = process_tree(self.proc.pid) if self.proc.returncode is None else []
        kill_tree(sorted(set(pids) | {p for p in self.seen if p != os.getpid() and _alive_child(p)}))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        try:
            async with asyncio.timeout(5):
                await self.proc.wait()
        except TimeoutError:
            pass


def _alive_child(pid: int) -> bool:
    """Whether pid still runs Chromium or our child (a pid seen earlier may have been reused)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return False
    return b"chrom" in cmdline or CHILD_MODULE.encode() in cmdline or b"playwright" in cmdline
