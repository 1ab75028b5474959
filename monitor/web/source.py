"""Where the status context reads from: the settings, the store, and the running monitor if any."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from monitor.config import Settings
from monitor.scheduler import Monitor
from monitor.store import Store


@dataclass
class Source:
    """Where the context reads from: always the store, and the running monitor when there is one."""

    settings: Settings
    store: Store
    monitor: Monitor | None = None

    @classmethod
    def of(cls, monitor: Monitor) -> Source:
        assert monitor.store is not None
        return cls(monitor.settings, monitor.store, monitor)

    def latest(self, instance: str, check: str) -> dict[str, Any] | None:
        """The newest result of one check: in memory while running, else from the database."""
        if self.monitor is not None and (result := self.monitor.latest.get((instance, check))):
            return result.to_dict()
        rows = self.store.recent_results(instance, check, limit=1)
        if not rows:
            return None
        if not rows[0]["steps"]:  # an up run's steps are kept with the check's state only
            state = self.store.states().get((instance, check))
            if state is not None and state.steps and state.last_at == rows[0]["started_at"]:
                rows[0]["steps"] = json.loads(state.steps)
        return rows[0]
