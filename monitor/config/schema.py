"""The configuration's sections besides instances: storage, web, alert rules, notifiers,
maintenance windows, and `Settings`, the whole file."""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo

from croniter import croniter
from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from monitor.config.instances import Instance, NotifyList
from monitor.config.push import Heartbeat, PushTarget
from monitor.fields import Duration, FrozenModel
from monitor.notifiers import REGISTRY, NotifierSettings


class Storage(FrozenModel):
    path: str = "data/monitor.db"
    raw_retention: Duration = 14 * 86400.0
    success_retention: Duration | None = None  # raw results of up runs; default: raw_retention
    rollup_retention: Duration = 400 * 86400.0
    prune_interval: Duration = 3600.0

    @model_validator(mode="after")
    def _retention(self) -> Storage:
        if self.rollup_retention < self.raw_retention:
            raise ValueError("rollup_retention must be at least raw_retention")
        return self


class BasicAuth(FrozenModel):
    username: str = Field(min_length=1)
    password: SecretStr  # no default password

    @field_validator("password")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 8:
            raise ValueError("use at least 8 characters (the value is not shown)")
        return value


class Web(FrozenModel):
    enabled: bool = True
    listen: str = "127.0.0.1:8080"
    title: str = "2FAuth status"
    description: str = ""
    logo: Path | None = None
    base_url: str | None = None  # public URL of the status page, for links in alerts and feeds
    refresh: Duration = 60.0  # auto refresh of the status page; 0 turns it off
    basic_auth: BasicAuth | None = None
    default_window: Literal["24h", "7d", "30d", "90d", "365d"] = "30d"  # uptime window shown first
    notice: str = ""  # one line shown above the status, such as planned work or "demo data"
    trusted_proxies: list[str] = []  # peers whose X-Forwarded-For is believed; empty: nobody's

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for i, entry in enumerate(value):
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"entry {i + 1} is not an IP address or network such as 10.0.0.5 or 10.0.0.0/8"
                ) from None
        return [entry.strip() for entry in value]

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("use host:port, such as 127.0.0.1:8080 or 0.0.0.0:8080")
        return value


class Delivery(FrozenModel):
    """How the outbox retries a delivery that failed: exponential backoff with jitter, bounded."""

    backoff_initial: Duration = 5.0
    backoff_max: Duration = 300.0  # the longest wait between two attempts
    give_up_after: Duration = 3 * 86400.0  # still failing this long after the alert: marked failed
    max_attempts: int = Field(0, ge=0)  # 0: no limit but give_up_after
    concurrency: int = Field(4, ge=1, le=100)  # sent at once; one at a time per check and notifier

    @model_validator(mode="after")
    def _bounds(self) -> Delivery:
        if self.backoff_initial <= 0:
            raise ValueError("backoff_initial must be more than 0s")
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must be at least backoff_initial")
        return self


class Alerts(FrozenModel):
    """Alert rules: when a check's stored state becomes an alert, and who hears of it."""

    failure_threshold: int = Field(3, ge=1)
    success_threshold: int = Field(2, ge=1)
    remind_every: Duration = 0.0
    send_on_resolved: bool = True
    alert_on_degraded: bool = True
    retry: Duration = 0.0  # re-run a check that failed once after this delay before the failure counts
    notify: NotifyList = []  # empty: every notifier gets every event
    delivery: Delivery = Delivery()

    @field_validator("retry")
    @classmethod
    def _retry(cls, value: float) -> float:
        if value > 300:
            raise ValueError("must be at most 5m (it is a quick second look, not a schedule)")
        return value

    def for_instance(self, inst: Instance) -> Alerts:
        """These rules with the instance's `alerts:` overrides applied."""
        if inst.alerts is None:
            return self
        changes = {k: v for k, v in inst.alerts.model_dump(exclude={"enabled"}).items() if v is not None}
        if "notify" in changes:
            changes["notify"] = inst.alerts.notify
        return self.model_copy(update=changes)


def _notifier_union() -> Any:
    """Every registered notifier's settings model, told apart by `type`."""
    return Annotated[Union[tuple(model for model, _ in REGISTRY.values())], Field(discriminator="type")]  # noqa: UP007


if TYPE_CHECKING:
    NotifierEntry = NotifierSettings
else:  # a union built from the registry: mypy cannot read it, and every member is a NotifierSettings
    NotifierEntry = _notifier_union()


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _clock_time(value: Any) -> Any:
    """YAML 1.1 reads an unquoted 02:30 as the base-60 number 150: take it back as 02:30."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1440:
        return dt.time(value // 60, value % 60)
    return value


class MaintenanceWindow(FrozenModel):
    """No alerts; shown as maintenance and left out of uptime. One-off (start), cron, or weekly (time)."""

    title: str = "Scheduled maintenance"
    description: str = ""
    instances: list[str] = []  # empty: every instance
    timezone: str = "UTC"
    start: dt.datetime | None = None  # one-off; without an offset it is read in `timezone`
    end: dt.datetime | None = None
    cron: str | None = None  # recurring: each match starts a window of `duration`
    weekdays: list[Weekday] = []  # recurring at `time` on these days (empty: every day)
    time: Annotated[dt.time, BeforeValidator(_clock_time)] | None = None
    duration: Duration | None = None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
            raise ValueError("unknown time zone: use a name such as Europe/Paris or UTC") from None
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and (len(value.split()) != 5 or not croniter.is_valid(value)):
            raise ValueError("is not a cron expression: use five fields, such as '0 3 * * sun'")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> MaintenanceWindow:
        if self.weekdays and self.time is None:
            raise ValueError("weekdays needs time, such as '02:00'")
        kinds = [k for k in ("start", "cron", "time") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("set one of start (one-off), cron, or time with weekdays (weekly)")
        if self.duration is not None and self.duration <= 0:
            raise ValueError("duration must be more than 0s")
        if self.start is None:
            if self.duration is None or self.end is not None:
                raise ValueError("a recurring window needs duration (such as 2h) and no end")
        elif (self.end is None) == (self.duration is None):
            raise ValueError("a one-off window needs end or duration (one of them)")
        elif self.end is not None and self.local(self.end) <= self.local(self.start):
            raise ValueError("end must be after start")
        return self

    def local(self, moment: dt.datetime) -> dt.datetime:
        """A configured date-time as an aware one: naive values are read in the window's time zone."""
        return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(self.timezone))


class Settings(FrozenModel):
    storage: Storage = Storage()
    web: Web = Web()
    instances: list[Instance] = Field(min_length=1)
    alerts: Alerts = Alerts()
    notifiers: list[NotifierEntry] = []
    maintenance: list[MaintenanceWindow] = []
    max_concurrency: int = Field(200, ge=1, le=10_000)  # checks wait on the network, not the CPU
    throttle_api: int = Field(60, ge=0)  # 2FAuth's THROTTLE_API, per client IP and minute
    throttle_share: float = Field(0.5, gt=0, le=1)  # warn above this share of throttle_api
    # where this monitor runs (home, vps-paris): a `location` label on every metric, so that one
    # Prometheus can tell several monitors of the same instances apart
    location: str | None = None
    push: list[PushTarget] = []  # results pushed to Uptime Kuma, Healthchecks or Gatus
    heartbeat: Heartbeat | None = None  # the monitor's own dead man's switch

    @field_validator("location")
    @classmethod
    def _location_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", value):
            raise ValueError("must be 1 to 63 letters, digits, '.', '_' or '-', such as home or vps-paris")
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        seen: set[str] = set()
        for inst in self.instances:
            if inst.name in seen:
                raise ValueError(f"instance name '{inst.name}' is used twice")
            seen.add(inst.name)
        return self

    @model_validator(mode="after")
    def _alert_references(self) -> Settings:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        names = [n.name for n in self.notifiers]
        for i, name in enumerate(names):
            if name in names[:i]:
                problems.append((("notifiers", i, "name"), f"'{name}' is used twice"))
        known = ", ".join(names) or "none; add notifiers:"
        rules = [(("alerts", "notify"), self.alerts.notify)] + [
            (("instances", i, "alerts", "notify"), inst.alerts.notify)
            for i, inst in enumerate(self.instances)
            if inst.alerts is not None and inst.alerts.notify is not None
        ]
        for loc, targets in rules:
            for j, target in enumerate(targets):
                if target.name not in names:
                    problems.append(((*loc, j), f"no notifier has this name (configured: {known})"))
        instances = {i.name for i in self.instances}
        for i, window in enumerate(self.maintenance):
            for j, name in enumerate(window.instances):
                if name not in instances:
                    problems.append((("maintenance", i, "instances", j), "no instance has this name"))
        for i, pushed in enumerate(self.push):
            inst = self.instance(pushed.instance)
            if inst is None:
                known_instances = ", ".join(sorted(instances))
                problems.append(
                    (("push", i, "instance"), f"no instance has this name (configured: {known_instances})")
                )
            elif pushed.check is not None and pushed.check not in inst.enabled_checks():
                problems.append((("push", i, "check"), f"the check is not enabled on instance {inst.name}"))
        if problems:
            raise ValidationError.from_exception_data(
                "Settings",
                [
                    InitErrorDetails(type=PydanticCustomError("reference", msg), loc=loc, input=None)
                    for loc, msg in problems
                ],
            )
        return self

    @functools.cached_property
    def _by_name(self) -> tuple[list[Instance], dict[str, Instance]]:
        by_name: dict[str, Instance] = {}
        for inst in self.instances:
            by_name.setdefault(inst.name, inst)
        return self.instances, by_name

    def instance(self, name: str) -> Instance | None:
        # a dict, made on first use: alerting and metrics ask for every result, and scanning
        # 10,000 instances in a list costs more than the check itself
        instances, by_name = self._by_name
        if instances is not self.instances:  # a model_copy with other instances
            del self.__dict__["_by_name"]
            instances, by_name = self._by_name
        return by_name.get(name)
