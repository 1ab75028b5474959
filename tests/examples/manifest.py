"""The manifest check: does 2FAuth serve its web app manifest, the file a phone installs the app from?"""

from __future__ import annotations

import time

from monitor.checks.context import InstanceContext
from monitor.checks.http import CheckFailure, classify_status, fetch
from monitor.checks.spec import CheckSettings, CheckSpec
from monitor.models import Kind, Result, Status, Step


class ManifestCheck(CheckSettings):
    enabled: bool = False  # opt in: checks.manifest.enabled: true
    path: str = "/manifest.json"


async def run_manifest(ctx: InstanceContext, cfg: ManifestCheck, steps: list[Step]) -> Result:
    started = time.time()
    fetched = await fetch(ctx, steps, "manifest", "GET", cfg.path)
    failure = classify_status(fetched, f"GET {cfg.path}")  # 401, 429, 5xx ... with their kinds
    if failure:
        raise failure
    data = fetched.json()
    if not isinstance(data, dict) or not data.get("name"):
        raise CheckFailure(  # the kind decides the status: bad_response is down (models.KIND_STATUS)
            Kind.BAD_RESPONSE,
            f"GET {cfg.path}: expected a web app manifest (JSON with a name)",
            http_status=fetched.status,
        )
    return Result(
        ctx.inst.name,
        "manifest",
        Status.UP,
        message=f"GET {cfg.path}: {str(data['name'])[:60]}",
        http_status=fetched.status,
        path=fetched.path,
        started_at=started,
    )


SPEC = CheckSpec(
    name="manifest",
    label="Web app manifest",
    description="serves the file phones install the app from",
    settings=ManifestCheck,
    runner=run_manifest,
    dash="8 2 2 2",
)
