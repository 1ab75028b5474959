"""What a check type is: one `CheckSpec` per module (live.py, ready.py, totp.py, browser.py), registered in
monitor/checks/__init__.py. Config builds `checks:` from the specs' settings models, and the page,
charts, alerts, OpenAPI and demo take their words and numbers from them.

To add a check type: write monitor/checks/<name>.py with its settings model (a `CheckSettings`),
its runner and `SPEC = CheckSpec(...)`, then add it to `SPECS` in monitor/checks/__init__.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from monitor.checks.context import InstanceContext
from monitor.fields import Duration, FrozenModel
from monitor.models import Result, Step


class CheckSettings(FrozenModel):
    """The keys under `checks.<name>:` every check has; a check's own model adds its keys."""

    enabled: bool = True
    # a correct answer slower than this is degraded/slow; None: the check type's default; 0: never
    slow_after: Duration | None = None
    default_slow_after: ClassVar[float] = 1.0  # seconds, for a check of one or two quick requests
    # secrets that may come from a file instead: file key -> key (read before validation)
    secret_files: ClassVar[dict[str, str]] = {}

    def slow_threshold(self) -> float | None:
        """Seconds after which an answer counts as slow, or None when slowness is never reported."""
        limit = self.default_slow_after if self.slow_after is None else self.slow_after
        return limit or None

    def runs(self, has_token: bool) -> bool:
        """Whether the check runs: on, and given what it needs (the TOTP flow needs a token)."""
        return self.enabled

    def check_interval(self) -> float | None:
        """The check's own interval, when it has one; None: the instance's interval."""
        return None

    def check_timeout(self) -> float | None:
        """The check's own time limit, when it has one; None: the instance's timeout."""
        return None

    def api_requests_per_run(self) -> float:
        """How many 2FAuth API requests (rate limited per client IP) one run makes, at most."""
        return 0.0

    def advice(self, has_token: bool) -> list[tuple[tuple[str | int, ...], str]]:
        """Settings that work but will likely hurt: (key path below the instance, text)."""
        return []


Runner = Callable[[InstanceContext, Any, list[Step]], Awaitable[Result]]


def never(ctx: InstanceContext) -> bool:
    return False


def always(ctx: InstanceContext) -> bool:
    return True


@dataclass(frozen=True)
class CheckSpec:
    """One check type: everything the rest of the monitor knows of it."""

    name: str  # the key under `checks:`, in URLs, metrics and the database
    label: str  # what the status page calls it: "Web server"
    description: str  # the page's one line under the label: "answers HTTP"
    settings: type[CheckSettings]  # the model of `checks.<name>:`
    runner: Runner  # runner(ctx, settings, steps) -> Result; raises CheckFailure for an outcome
    # whether a run now spends the 2FAuth API budget: skipped while 2FAuth asks to wait (Retry-After)
    uses_api: Callable[[InstanceContext], bool] = never
    dash: str = ""  # SVG stroke-dasharray of its line on the response-time chart ("" solid)
    demo_latency_ms: float = 50.0  # the demo's typical response time for it
