"""What the checks of one instance share: its settings (as far as checks read them), an HTTP client
with the TLS trust it asks for, and what earlier runs discovered.

Instances with the same TLS trust share one client and its connection pool (`Clients`): a client per
instance was about 19 KB each at 10,000 instances, and the pool is keyed by host anyway. What stays
per instance is its timeout (given with each request) and a cap on its requests in flight."""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from monitor.checks.transport import AiohttpTransport

USER_AGENT = "2fauth-monitor/0.1 (+synthetic check)"


class InstanceSettings(Protocol):
    """What the checks read of an instance's settings (monitor.config.Instance has it all)."""

    @property
    def name(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def token(self) -> SecretStr | None: ...
    @property
    def timeout(self) -> float: ...
    @property
    def max_body(self) -> int: ...
    @property
    def insecure(self) -> bool: ...
    @property
    def ca_bundle(self) -> Path | None: ...
    @property
    def cert_expiry_warning(self) -> float: ...
    @property
    def token_expiry_warning(self) -> float: ...
    def enabled_checks(self) -> list[str]: ...
    def check_settings(self, check: str) -> Any: ...


MAX_REQUESTS_IN_FLIGHT = 4  # per instance: its checks, a recheck, and room for one more
URLS_KEPT = 8  # parsed URLs kept per instance (about 420 bytes each)


@dataclass(slots=True)
class InstanceContext:
    """What the checks of one instance share between runs."""

    inst: InstanceSettings
    client: httpx.AsyncClient
    owns_client: bool = False  # a client of its own (make_context without Clients) closes with it
    live_path: str | None = None  # discovered in auto mode
    ready_mode: str | None = None  # "endpoint" or "api", discovered in auto mode
    discovered_at: float = 0.0
    rate_limited_until: float = 0.0  # wall clock; API checks skip until then
    version: str | None = None
    version_tried_at: float = 0.0
    # what the answers showed about the 2FAuth release (monitor.checks.release)
    api_facts: dict[str, Any] = field(default_factory=dict)
    api_facts_probed_at: float = 0.0
    encryption: bool | None = None  # 2FAuth's useEncryption setting; None = not known
    encryption_note: str = ""  # why it is not known
    encryption_read_at: float = 0.0
    artifacts: Path | None = None  # where a check may keep files of its failures (screenshots)
    origin: str = field(init=False)
    extensions: dict[str, Any] = field(init=False)  # each request's: the instance's timeout
    in_flight: asyncio.Semaphore = field(init=False)
    urls: dict[str, httpx.URL] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.origin = origin(self.inst.url)
        self.extensions = _extensions(self.inst.timeout)
        self.in_flight = asyncio.Semaphore(MAX_REQUESTS_IN_FLIGHT)

    def request(self, method: str, url: str, headers: dict[str, str], json_body: Any) -> httpx.Request:
        """A request for this instance's client. Built directly, not by `client.build_request`
        (136 µs, mostly parsing the same URL again): its few URLs are parsed once (30 µs each)."""
        parsed = self.urls.get(url)
        if parsed is None:
            parsed = httpx.URL(url)
            if len(self.urls) < URLS_KEPT:  # a redirect's targets are the server's to choose
                self.urls[url] = parsed
        headers = {**headers, "User-Agent": USER_AGENT}
        return httpx.Request(method, parsed, headers=headers, json=json_body, extensions=self.extensions)

    @property
    def token(self) -> str | None:
        return self.inst.token.get_secret_value() if self.inst.token else None

    async def aclose(self) -> None:
        if self.owns_client:
            await self.client.aclose()


@functools.lru_cache(maxsize=64)
def _extensions(timeout: float) -> dict[str, Any]:
    """A request's extensions for one timeout, shared by the instances that have it (read only)."""
    return {"timeout": httpx.Timeout(timeout).as_dict()}


def origin(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


@functools.lru_cache(maxsize=64)
def _ssl_context(insecure: bool, ca_bundle: str | None, version: tuple[int, int] | None) -> ssl.SSLContext:
    """One TLS context per trust setting, shared by every client: building one loads the whole CA
    store (23 ms and 0.7 MB each, measured), which at 10,000 instances was minutes and gigabytes.
    `version` (the bundle's mtime and size) makes an edited bundle load again on reload."""
    if insecure:
        return httpx.create_ssl_context(verify=False, trust_env=False)
    if ca_bundle:
        return ssl.create_default_context(cafile=ca_bundle)
    return httpx.create_ssl_context(verify=True, trust_env=False)


def _bundle_version(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # ssl reports the missing file with its own message
    return st.st_mtime_ns, st.st_size


def _trust(inst: InstanceSettings) -> tuple[bool, str | None, tuple[int, int] | None]:
    bundle = None if inst.insecure or not inst.ca_bundle else str(inst.ca_bundle)
    return inst.insecure, bundle, _bundle_version(bundle) if bundle else None


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing: no check needs a cookie, and a shared client must never carry
    one instance's cookies to another (reading each answer's Set-Cookie was 4% of a check)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class CheckClient(httpx.AsyncClient):
    """httpx's client as the checks use it: no redirects followed, no cookies kept."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        return None  # httpx's constructor sets its jar; this client keeps none


_NO_COOKIES = _NoCookies()


def make_client(trust: tuple[bool, str | None, tuple[int, int] | None]) -> httpx.AsyncClient:
    """A pooled client for one TLS trust setting: connections are reused between checks."""
    return CheckClient(
        transport=AiohttpTransport(_ssl_context(*trust)),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        trust_env=False,
    )


class Clients:
    """One client per TLS trust setting, shared by the instances that ask for it; closed together."""

    def __init__(self) -> None:
        self._by_trust: dict[tuple[bool, str | None, tuple[int, int] | None], httpx.AsyncClient] = {}

    def get(self, inst: InstanceSettings) -> httpx.AsyncClient:
        trust = _trust(inst)
        client = self._by_trust.get(trust)
        if client is None:
            client = self._by_trust[trust] = make_client(trust)
        return client

    async def close_unused(self, used: Iterable[httpx.AsyncClient]) -> None:
        """Close the clients no instance uses any more (after a reload changed a CA bundle)."""
        keep = {id(c) for c in used}
        for trust, client in list(self._by_trust.items()):
            if id(client) not in keep:
                del self._by_trust[trust]
                await client.aclose()

    async def aclose(self) -> None:
        await self.close_unused(())


def artifacts_dir(storage_path: str) -> Path | None:
    """Where checks keep files of their failures (the browser check's screenshots): a folder beside
    the history, `data/monitor.db` -> `data/monitor-screenshots/`; None for an in-memory database."""
    if not storage_path or storage_path == ":memory:":
        return None
    db = Path(storage_path)
    return db.with_name(f"{db.stem}-screenshots")


def make_context(
    inst: InstanceSettings, clients: Clients | None = None, *, artifacts: Path | None = None
) -> InstanceContext:
    """The context of one instance, on a shared client of `clients`, else on a client of its own;
    `artifacts`: where its checks keep files of their failures."""
    if clients is None:
        return InstanceContext(inst, make_client(_trust(inst)), owns_client=True, artifacts=artifacts)
    return InstanceContext(inst, clients.get(inst), artifacts=artifacts)
