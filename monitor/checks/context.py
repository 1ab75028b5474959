"""What the checks of one instance share: its settings (as far as checks read them), its HTTP client
with the TLS trust it asks for, and what earlier runs discovered."""

from __future__ import annotations

import functools
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

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


@dataclass
class InstanceContext:
    """What the checks of one instance share between runs."""

    inst: InstanceSettings
    client: httpx.AsyncClient
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

    def __post_init__(self) -> None:
        self.origin = origin(self.inst.url)

    @property
    def token(self) -> str | None:
        return self.inst.token.get_secret_value() if self.inst.token else None

    async def aclose(self) -> None:
        await self.client.aclose()


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


def make_client(inst: InstanceSettings) -> httpx.AsyncClient:
    """One pooled client per instance: connections are reused between its checks."""
    bundle = None if inst.insecure or not inst.ca_bundle else str(inst.ca_bundle)
    verify = _ssl_context(inst.insecure, bundle, _bundle_version(bundle) if bundle else None)
    return httpx.AsyncClient(
        verify=verify,
        timeout=httpx.Timeout(inst.timeout),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=4, max_keepalive_connections=2, keepalive_expiry=90),
        headers={"User-Agent": USER_AGENT},
        trust_env=False,
    )


def artifacts_dir(storage_path: str) -> Path | None:
    """Where checks keep files of their failures (the browser check's screenshots): a folder beside
    the history, `data/monitor.db` -> `data/monitor-screenshots/`; None for an in-memory database."""
    if not storage_path or storage_path == ":memory:":
        return None
    db = Path(storage_path)
    return db.with_name(f"{db.stem}-screenshots")


def make_context(inst: InstanceSettings, artifacts: Path | None = None) -> InstanceContext:
    return InstanceContext(inst, make_client(inst), artifacts=artifacts)
