"""Which 2FAuth release answers, told from its behaviour rather than from the version it shows.

From the source of each tag (v5.3 to v8.0.1) and the real v5.4.3:
    readiness   `GET /api/v1/twofaccounts/count` is {"count": N} in v5 and v6, {"owned","shared","total"} from v7
    unknown     an unknown `GET /api/v1/...` is the web page (200) before v7, a JSON 404 from v7
    next        OTP answers carry `next_password` from v6
The checks record what they saw in `ctx.api_facts`; `describe` turns it into one line.
"""

from __future__ import annotations

import time

from monitor.checks.context import InstanceContext
from monitor.checks.http import CheckFailure, fetch
from monitor.models import Step

REPROBE_AFTER = 3600.0  # seconds between two probes of an unknown API path
PROBE_PATH = "/api/v1/2fauth-monitor-release-probe"


def note_readiness(ctx: InstanceContext, field: str) -> None:
    ctx.api_facts["readiness"] = field


def note_next_password(ctx: InstanceContext, present: bool) -> None:
    ctx.api_facts["next_password"] = present


async def probe_unknown_api_path(ctx: InstanceContext, steps: list[Step]) -> None:
    """GET an API path no release has, at most hourly: web page before v7, JSON 404 from v7."""
    if time.time() < ctx.api_facts_probed_at + REPROBE_AFTER:
        return
    ctx.api_facts_probed_at = time.time()
    try:
        fetched = await fetch(ctx, steps, "release probe", "GET", PROBE_PATH)
    except CheckFailure:
        return  # a nicety: never fails the check that asked
    if fetched.status == 404 and "json" in fetched.content_type:
        ctx.api_facts["unknown_api"] = "json404"
    elif fetched.status == 200 and "html" in fetched.content_type:
        ctx.api_facts["unknown_api"] = "web_page"


def generation(facts: dict[str, object]) -> str | None:
    """'v5', 'v6', 'v5 or v6', 'v7 or later', or None when nothing tells."""
    modern = facts.get("readiness") == "total" or facts.get("unknown_api") == "json404"
    old = facts.get("readiness") == "count" or facts.get("unknown_api") == "web_page"
    if modern and not old:
        return "v7 or later"
    if old and not modern:
        nxt = facts.get("next_password")
        return "v5 or v6" if nxt is None else "v6" if nxt else "v5"
    if not modern and not old and facts.get("next_password"):
        return "v6 or later"
    return None


def describe(ctx: InstanceContext) -> str | None:
    """One line for the instance page: the release the answers fit, and what showed it."""
    facts = ctx.api_facts
    seen = []
    if facts.get("readiness") == "count":
        seen.append('count answers {"count"}')
    elif facts.get("readiness") == "total":
        seen.append('count answers {"owned","shared","total"}')
    if facts.get("unknown_api") == "web_page":
        seen.append("unknown API paths answer the web page")
    elif facts.get("unknown_api") == "json404":
        seen.append("unknown API paths answer a JSON 404")
    if "next_password" in facts:
        seen.append("codes come with next_password" if facts["next_password"] else "no next_password")
    if not seen:
        return None
    gen = generation(facts)
    head = f"API of 2FAuth {gen}" if gen else "API of no single 2FAuth release"
    return f"{head} ({'; '.join(seen)})"
