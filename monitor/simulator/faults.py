"""Fault names and the per-instance state the simulator keeps: faults, clock, counters, rate limit.

Every instance (the bare root is "default", `/s/<name>` the others) has its own state, created on
first use. The state is touched only from the server's event loop; other threads go through
`SimHandle`, which hops onto that loop.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from monitor.otp import STEAM_ALPHABET

from .accounts import Account, default_accounts

Flavour = Literal["upstream", "probes"]
FLAVOURS: tuple[Flavour, ...] = ("upstream", "probes")
DEFAULT_INSTANCE = "default"
Release = Literal["8.0.1", "5.4.3"]
RELEASES: tuple[Release, ...] = ("8.0.1", "5.4.3")

FAULTS: dict[str, str] = {
    "down": "connections refused (the Python handle closes the port) or reset without a response",
    "slow": "every response waits `delay` seconds first",
    "server_error": '500 {"message":"Server Error"} everywhere, /up included',
    "maintenance": "503 everywhere, /up included: JSON if the client asks for it, else an HTML page",
    "db_down": "API answers 500 while /up stays 200; probes' /ready fails naming the database",
    "app_key": "APP_KEY changed: with encryption (the default) stored-account OTPs answer 400, else nothing changes",
    "clock_skew": "the server clock is off by `skew` seconds: codes, generated_at and Date follow it",
    "wrong_codes": "returned codes are well-formed but wrong",
    "rate_limited": "every API call answers 429 with Retry-After: 30",
    "reset": "the connection is reset in the middle of the response body",
    "md5_refused": "algorithm md5 is refused with 400 invalid OTP parameters (release 5.4.3 refuses md5 "
    "by itself at truncation offsets 13 to 15)",
    "bad_json": "API bodies are not JSON",
    "ready_warn": "probes' /ready reports warn (200); no effect in the upstream flavour",
}

FaultSpec = Iterable[str] | Mapping[str, Iterable[str]]


def check_faults(faults: Iterable[str]) -> frozenset[str]:
    """The fault names as a set; ValueError naming the unknown ones."""
    names = frozenset(faults)
    unknown = sorted(names - FAULTS.keys())
    if unknown:
        raise ValueError(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(FAULTS)}")
    return names


def start_faults(spec: FaultSpec) -> dict[str, frozenset[str]]:
    """Faults at start by instance: a plain list applies to the default instance."""
    if isinstance(spec, Mapping):
        return {name: check_faults(names) for name, names in spec.items()}
    if isinstance(spec, str):
        spec = [spec]
    return {DEFAULT_INSTANCE: check_faults(spec)}


def wrong_code(code: str) -> str:
    """A code of the same shape that is certainly not the right one."""
    shifted = []
    for char in code:
        if char.isdigit():
            shifted.append(str((int(char) + 1) % 10))
        else:
            shifted.append(STEAM_ALPHABET[(STEAM_ALPHABET.index(char) + 1) % len(STEAM_ALPHABET)])
    return "".join(shifted)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What every instance of one simulator shares."""

    flavour: Flavour = "upstream"
    tokens: frozenset[str] = frozenset()
    accounts: tuple[Account, ...] = field(default_factory=default_accounts)
    throttle: int = 60
    release: Release = "8.0.1"
    version: str = "8.0.1"
    encryption: bool = True  # 2FAuth's useEncryption: secrets stored encrypted with APP_KEY
    skew: float = 120.0
    delay: float = 3.0
    faults: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(slots=True)
class RateDecision:
    """The outcome of one hit on the API rate limiter."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: int = 0
    reset_at: int = 0


@dataclass(slots=True)
class _Window:
    start: float
    hits: int = 0


class Instance:
    """One simulated 2FAuth: its faults, clock, stored accounts, counters and rate-limit windows."""

    def __init__(self, name: str, config: SimConfig) -> None:
        self.name = name
        self.config = config
        self.faults: frozenset[str] = frozenset()
        self.delay = config.delay
        self.skew = config.skew
        self.requests: Counter[str] = Counter()
        self.hotp_reads = 0
        self.accounts: dict[int, Account] = {}
        self._windows: dict[str, _Window] = {}
        self.reset(config.faults.get(name, frozenset()))

    def reset(self, faults: frozenset[str] = frozenset()) -> None:
        """Back to a fresh instance: given faults, default parameters, zero counters, fresh accounts."""
        self.set_faults(faults)
        self.requests.clear()
        self.hotp_reads = 0
        self.accounts = {account.id: account for account in self.config.accounts}
        self._windows.clear()

    def set_faults(
        self, faults: Iterable[str], *, delay: float | None = None, skew: float | None = None
    ) -> None:
        """Replace the faults; parameters left out go back to the simulator's defaults."""
        self.faults = check_faults(faults)
        self.delay = self.config.delay if delay is None else float(delay)
        self.skew = self.config.skew if skew is None else float(skew)

    def has(self, fault: str) -> bool:
        return fault in self.faults

    @property
    def v5(self) -> bool:
        """Answers as 2FAuth 5.4.3 (count, no next_password, the web page for unknown API paths)."""
        return self.config.release == "5.4.3"

    def undecipherable(self) -> bool:
        """Stored secrets fail to decipher: a changed APP_KEY matters only when they are encrypted."""
        return "app_key" in self.faults and self.config.encryption

    def now(self) -> float:
        """The instance's clock: real time, plus the skew while `clock_skew` is on."""
        return time.time() + (self.skew if "clock_skew" in self.faults else 0.0)

    def hit_rate_limit(self, client: str) -> RateDecision:
        """Count one API request from a client, like Laravel's `throttle:api` (fixed one-minute window)."""
        limit = self.config.throttle
        now = time.monotonic()
        window = self._windows.get(client)
        if window is None or now >= window.start + 60:
            window = self._windows[client] = _Window(start=now)
        if window.hits >= limit:
            retry_after = max(1, math.ceil(window.start + 60 - now))
            return RateDecision(False, limit, 0, retry_after, int(self.now()) + retry_after)
        window.hits += 1
        return RateDecision(True, limit, limit - window.hits)

    def snapshot(self) -> dict[str, Any]:
        """The state as `GET /__sim/state` shows it."""
        return {
            "instance": self.name,
            "flavour": self.config.flavour,
            "release": self.config.release,
            "encryption": self.config.encryption,
            "faults": sorted(self.faults),
            "delay": self.delay,
            "skew": self.skew,
            "clock": self.now(),
            "counters": {
                "requests": dict(self.requests),
                "total_requests": sum(self.requests.values()),
                "hotp_reads": self.hotp_reads,
            },
            "accounts": [
                {"id": account.id, "otp_type": account.otp_type, "counter": account.counter}
                for account in self.accounts.values()
            ],
        }


class Registry:
    """Instances by name, created on first use."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self._instances: dict[str, Instance] = {}

    def get(self, name: str) -> Instance:
        instance = self._instances.get(name)
        if instance is None:
            instance = self._instances[name] = Instance(name, self.config)
        return instance

    def names(self) -> list[str]:
        return sorted(self._instances)

    def reset(self, name: str | None = None) -> None:
        """Clear one instance, or all of them: no faults, zero counters, fresh accounts."""
        targets = [self.get(name)] if name is not None else list(self._instances.values())
        for instance in targets:
            instance.reset()
