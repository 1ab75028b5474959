"""What the monitor's default checks cost the REAL 2FAuth v5.4.3: the web app page (240 ms of a PHP
worker each time, against 10 to 30 ms for /up or an API read) is rendered at most once an hour,
and detection is unchanged: each run still reaches /up, the API and the code generation.

Runs of one context stand for a running monitor's runs of one instance; an hour passing is the
context's discovery times moved back by REDISCOVER_AFTER (nothing else about the checks changes).
The requests are counted from the PHP server's own access log.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import pytest

from monitor import config
from monitor.checks import make_context, run_check
from monitor.checks.probe import REDISCOVER_AFTER
from monitor.checks.release import REPROBE_AFTER

from .real2fauth import Real2FAuth, wait_api_budget

pytestmark = pytest.mark.real2fauth

WEB_PAGE = ("/live", "/ready", "/", "/api/v1/2fauth-monitor-release-probe")  # the SPA on v5


def requests_since(server: Real2FAuth, offset: int) -> Counter[str]:
    with (server.folder / "server.log").open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    return Counter(p.split("?")[0] for p in re.findall(r"\] URI: (\S+)", text))


def test_the_web_page_is_rendered_at_most_once_an_hour(real_plain) -> None:
    server = real_plain
    settings = config.from_mapping({"instances": [server.monitor_instance()]}, env={})
    inst = settings.instances[0]
    runs = 4
    wait_api_budget(server, 3 * (runs + 1) + 2)
    offset = (server.folder / "server.log").stat().st_size

    async def an_hour_then_the_next() -> list[list[object]]:
        ctx = make_context(inst)
        try:
            first = [[await run_check(ctx, c) for c in inst.enabled_checks()] for _ in range(runs)]
            ctx.discovered_at -= REDISCOVER_AFTER + 1
            ctx.version_tried_at -= REDISCOVER_AFTER + 1
            ctx.api_facts_probed_at -= REPROBE_AFTER + 1
            return [*first, [await run_check(ctx, c) for c in inst.enabled_checks()]]
        finally:
            await ctx.aclose()

    results = asyncio.run(an_hour_then_the_next())
    seen = requests_since(server, offset)
    assert all(str(r.status) == "up" for run in results for r in run), results
    assert [r.version for r in results[-1]][0] == "5.4.3"
    # every run checks what it checked before: the web server, readiness through the API, the codes
    assert seen["/up"] == seen["/api/v1/twofaccounts/count"] == seen["/api/v1/twofaccounts/otp"] == runs + 1
    # the web page: /live once in each hour (its discovery gives the version too), /ready once at
    # the start, the release probe once an hour, "/" never
    pages = {p: seen[p] for p in WEB_PAGE}
    assert pages == {"/live": 2, "/ready": 1, "/": 0, "/api/v1/2fauth-monitor-release-probe": 2}, seen
