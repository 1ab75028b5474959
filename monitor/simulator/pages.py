"""The non-API pages: `/up`, the single-page app every other path falls into, the 503 page, probes."""

from __future__ import annotations

import html
import json
import secrets
import time

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from .faults import Instance

HEALTH_JSON = "application/health+json"


def up_page(request: Request) -> Response:
    """`/up`: 200, a small HTML page that proves only that the PHP app booted."""
    started = request.scope.get("sim.started", time.perf_counter())
    rendered_ms = round((time.perf_counter() - started) * 1000)
    body = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>2FAuth</title></head>
<body>
  <div class="health">
    <h2>2FAuth up</h2>
    <p>HTTP request received. Response successfully rendered in {rendered_ms}ms.</p>
  </div>
</body>
</html>
"""
    return HTMLResponse(body)


def spa_page(instance: Instance) -> Response:
    """Any other web path: 200 with the SPA shell; the 404 only exists in the browser router."""
    version = html.escape(instance.config.version)
    body = f"""<!DOCTYPE html>
<html data-theme="system" lang="en">
<head>
  <meta charset="utf-8">
  <meta name="csrf-token" content="{secrets.token_urlsafe(30)}">
  <meta name="robots" content="noindex, nofollow">
  <title>2FAuth</title>
  <link rel="manifest" href="/manifest.json">
</head>
<body>
  <div id="app"><app></app></div>
  <script type="text/javascript">
    var appSettings = {{"enableSharing":false}};
    var appVersion = '{version}';
    var isDemoApp = false;
    var isTestingApp = false;
  </script>
  <script type="module" src="/build/assets/app.js"></script>
</body>
</html>
"""
    return HTMLResponse(body)


def wants_json(request: Request) -> bool:
    """Laravel's `expectsJson()`: an XHR accepting anything, or a first Accept type that is JSON."""
    accept = request.headers.get("accept", "")
    first = accept.split(",")[0].split(";")[0].strip().lower()
    if "/json" in first or "+json" in first:
        return True
    is_xhr = request.headers.get("x-requested-with", "").lower() == "xmlhttprequest"
    return is_xhr and (not accept or first in ("*/*", "*"))


def maintenance_page(request: Request) -> Response:
    """`artisan down`: 503 before any other middleware, so the body follows the client's Accept."""
    if wants_json(request):
        return JSONResponse({"message": "Service Unavailable"}, status_code=503)
    body = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Service Unavailable</title></head>
<body>
  <div class="error"><span class="code">503</span> <span class="message">Service Unavailable</span></div>
</body>
</html>
"""
    return HTMLResponse(body, status_code=503)


def live_probe(instance: Instance) -> Response:
    """Probes flavour `/live`: the process answers."""
    return JSONResponse({"status": "pass"}, media_type=HEALTH_JSON)


def ready_probe(instance: Instance) -> Response:
    """Probes flavour `/ready`: IETF health check JSON naming each component; 503 when one fails."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(instance.now()))
    database = {"componentName": "database", "componentType": "datastore", "status": "pass", "time": now}
    if instance.has("db_down"):
        database.update(status="fail", output="SQLSTATE[HY000] [2002] Connection refused")
    keys = {"componentName": "oauth-keys", "componentType": "component", "status": "pass", "time": now}
    if instance.has("ready_warn"):
        keys.update(status="warn", output="OAuth key files are readable by other users")
    checks = {"database:connections": [database], "oauth-keys:permissions": [keys]}
    statuses = {check[0]["status"] for check in checks.values()}
    status = "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"
    version = instance.config.version
    body = {
        "status": status,
        "version": version.split(".")[0],
        "releaseId": version,
        "serviceId": instance.name,
        "checks": checks,
    }
    return Response(json.dumps(body), 503 if status == "fail" else 200, media_type=HEALTH_JSON)
