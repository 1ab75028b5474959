"""The OpenAPI 3.1 contract of /api/v1/*, served at /api/v1/openapi.json.

Built from the same constants the routes use (windows, check names, error kinds, instance names),
so an enum cannot fall behind the code. tests/test_openapi.py validates it with
openapi-spec-validator, checks that it names exactly the /api/v1 routes, fuzzes the running
server against it with schemathesis, and checks that every field the server sends is documented.
Objects may gain fields in later versions: clients should ignore the ones they do not know.
(About 400 lines, nearly all of them the schemas as data: one contract reads best in one place.)
"""

from __future__ import annotations

import copy
from typing import Any

from monitor import __version__
from monitor.checks import SPECS
from monitor.config import NAME_PATTERN
from monitor.models import Kind
from monitor.web.context import WINDOWS

PATH = "/api/v1/openapi.json"
STATUSES = ["up", "degraded", "down", "unknown"]


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return {"oneOf": [schema, {"type": "null"}]}
    return {**schema, "type": [schema["type"], "null"]}


def _object(required: dict[str, Any], description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "required": list(required), "properties": required}
    if description:
        out["description"] = description
    return out


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


STRING: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
NUMBER: dict[str, Any] = {"type": "number"}
TIME: dict[str, Any] = {"type": "number", "description": "unix time, seconds"}
RATIO: dict[str, Any] = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
BOOL: dict[str, Any] = {"type": "boolean"}


COUNTS: dict[str, Any] = {k: COUNT for k in ("count", "up", "degraded", "down", "maintenance")}
OBSERVED: dict[str, Any] = {  # since when a check or instance is watched
    "observed_since": {**_nullable(TIME), "description": "when its history begins"},
    "uptime_since": _ref("SinceByWindow"),
}


def _schemas() -> dict[str, Any]:
    return {
        **_basic_schemas(),
        **_instance_schemas(),
        **_incident_schemas(),
        **_status_schemas(),
        **_history_schemas(),
    }


def _basic_schemas() -> dict[str, Any]:
    """Errors, windows, statuses and kinds, and the per-window maps."""
    windows = list(WINDOWS)
    kind = {"type": ["string", "null"], "enum": [*(str(k) for k in Kind), None]}
    per_window = {
        "type": "object",
        "required": windows,
        "properties": {w: dict(RATIO) for w in windows},
    }
    return {
        "Error": _object({"error": STRING}, "Why the request was refused"),
        "Window": {"type": "string", "enum": windows},
        "CheckStatus": {"type": "string", "enum": STATUSES},
        "Kind": kind,
        "UptimeByWindow": {**per_window, "description": "share of runs that worked; null without data"},
        "LatencyByWindow": {
            "type": "object",
            "required": windows,
            "properties": {w: {"type": ["number", "null"], "minimum": 0} for w in windows},
            "description": "average latency in milliseconds; null without data",
        },
        "SinceByWindow": {
            "type": "object",
            "required": windows,
            "properties": {w: _nullable(TIME) for w in windows},
            "description": "when monitoring began, if inside the window (its uptime covers only the time since); else null",
        },
    }


def _instance_schemas() -> dict[str, Any]:
    """An instance as /api/v1/status shows it: its checks, daily bars and response times."""
    return {
        "Check": _object(
            {
                "name": {"type": "string", "enum": list(SPECS)},
                "label": STRING,
                "description": STRING,
                "status": _ref("CheckStatus"),
                "status_text": STRING,
                "kind": _ref("Kind"),
                "kind_text": STRING,
                "message": STRING,
                "since": _nullable(TIME),
                "last_at": _nullable(TIME),
                "age_s": {"type": ["number", "null"], "minimum": 0},
                "latency_ms": {"type": ["number", "null"], "minimum": 0},
                "stale": BOOL,
                "uptime": _ref("UptimeByWindow"),
                **OBSERVED,
            }
        ),
        "DayBar": _object(
            {
                "day": {**INT, "description": "start of the UTC day, unix time"},
                **COUNTS,
                "uptime": RATIO,
                "incidents": COUNT,
                "downtime_s": {"type": "number", "minimum": 0},
                "level": {"type": "string", "enum": ["ok", "degraded", "down", "maintenance", "none"]},
            }
        ),
        "LatencyPoint": _object({"t": TIME, "avg": NUMBER, "min": NUMBER, "max": NUMBER}),
        "Instance": _object(
            {
                "name": {"type": "string", "pattern": NAME_PATTERN},
                "label": STRING,
                "url": {"type": ["string", "null"], "description": "shown only with show_url: true"},
                "version": {"type": ["string", "null"], "description": "the 2FAuth version it reports"},
                "release": {
                    "type": ["string", "null"],
                    "description": "what the answers showed about the 2FAuth release",
                },
                "notices": {
                    **_array(STRING),
                    "description": "standing notices, shown even when all is up (an inactive APP_KEY canary)",
                },
                "status": {"type": "string", "enum": [*STATUSES, "maintenance"]},
                "status_text": STRING,
                "in_maintenance": BOOL,
                "uptime": _ref("UptimeByWindow"),
                "uptime_window": RATIO,
                **OBSERVED,
                "latency_avg_ms": _ref("LatencyByWindow"),
                "checks": _array(_ref("Check")),
                "bars": {**_array(_ref("DayBar")), "description": "one per UTC day, oldest first"},
                "series": {
                    "type": "object",
                    "description": "response times by check, for the chart of the chosen window",
                    "additionalProperties": _array(_ref("LatencyPoint")),
                },
            }
        ),
    }


def _incident_schemas() -> dict[str, Any]:
    """Incidents and maintenance windows."""
    return {
        "IncidentPart": _object(
            {
                "check": STRING,
                "check_label": STRING,
                "status": _ref("CheckStatus"),
                "kind": _ref("Kind"),
                "kind_text": STRING,
                "message": STRING,
                "started_at": TIME,
                "ended_at": _nullable(TIME),
                "consequence_of": {"type": ["string", "null"], "description": "the check it follows from"},
            }
        ),
        "Incident": _object(
            {
                "instance": STRING,
                "instance_label": STRING,
                "checks": _array(_ref("IncidentPart")),
                "check_label": STRING,
                "status": _ref("CheckStatus"),
                "status_text": STRING,
                "cause": {**STRING, "description": "the check that heads it: the longest-lasting cause"},
                "kind": _ref("Kind"),
                "kind_text": STRING,
                "message": STRING,
                "started_at": TIME,
                "ended_at": _nullable(TIME),
                "ongoing": BOOL,
                "duration_s": COUNT,
                "during_maintenance": BOOL,
            }
        ),
        "Maintenance": _object(
            {
                "title": STRING,
                "description": STRING,
                "instances": _array(STRING),
                "instance_labels": _array(STRING),
                "start": TIME,
                "end": TIME,
            }
        ),
    }


def _status_schemas() -> dict[str, Any]:
    """The whole /api/v1/status document."""
    return {
        "Status": _object(
            {
                "title": STRING,
                "description": STRING,
                "notice": STRING,
                "generated_at": TIME,
                "refresh": {**COUNT, "description": "seconds between page refreshes; 0: off"},
                "window": _ref("Window"),
                "windows": _array(_ref("Window")),
                "bar_days": COUNT,
                "overall": _object(
                    {
                        "status": {"type": "string", "enum": [*STATUSES, "maintenance"]},
                        "text": STRING,
                    }
                ),
                "instances": _array(_ref("Instance")),
                "incidents": _array(_ref("Incident")),
                "maintenance": _object(
                    {"active": _array(_ref("Maintenance")), "upcoming": _array(_ref("Maintenance"))}
                ),
            },
            "Everything the status page shows",
        ),
    }


def _history_schemas() -> dict[str, Any]:
    """/api/v1/instances/{name}/history: totals, rollups and raw results."""
    return {
        "Totals": _object(
            {
                **COUNTS,
                "latency_sum": {"type": "number", "minimum": 0},
                "latency_n": COUNT,
                "uptime": RATIO,
                "latency_avg": {"type": ["number", "null"], "minimum": 0},
            }
        ),
        "Rollup": _object(
            {
                "instance": STRING,
                "check": STRING,
                "bucket": {**INT, "description": "start of the hour or day, unix time"},
                **COUNTS,
                "latency_sum": {"type": "number", "minimum": 0},
                "latency_n": COUNT,
                "latency_min": {"type": ["number", "null"]},
                "latency_max": {"type": ["number", "null"]},
            }
        ),
        "Result": _object(
            {
                "check": STRING,
                "started_at": TIME,
                "status": _ref("CheckStatus"),
                "kind": _ref("Kind"),
                "message": STRING,
                "latency_ms": {"type": ["number", "null"]},
                "http_status": {"type": ["integer", "null"]},
                "version": {"type": ["string", "null"]},
                "maintenance": {"type": "integer", "enum": [0, 1]},
            }
        ),
        "History": _object(
            {
                "instance": STRING,
                "check": {"type": ["string", "null"]},
                "window": _ref("Window"),
                "generated_at": TIME,
                "uptime": _ref("Totals"),
                "rollup_size_s": {"type": "integer", "enum": [3600, 86400]},
                "rollups": _array(_ref("Rollup")),
                "results": {**_array(_ref("Result")), "maxItems": 1000},
                "results_truncated": BOOL,
            }
        ),
    }


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": STRING}}}


def _common() -> dict[str, Any]:
    return {
        "401": {
            "description": "web.basic_auth is on and the request has no valid credentials",
            "content": {"text/plain": {"schema": STRING}},
        },
        "414": _text("the URL is longer than 2,048 bytes"),
        "429": _text("too many failed logins from this address: wait"),
    }


WINDOW_PARAM = {
    "name": "window",
    "in": "query",
    "required": False,
    "description": "the uptime window; absent or empty: web.default_window",
    "schema": {"type": "string", "enum": [*WINDOWS, ""]},
}


def _history_operation() -> dict[str, Any]:
    return {
        "operationId": "getInstanceHistory",
        "summary": "One instance's uptime, rollups and raw results over a window",
        "parameters": [
            {
                "name": "name",
                "in": "path",
                "required": True,
                "description": "the instance's name in the configuration",
                "schema": {"type": "string", "pattern": NAME_PATTERN},
                "example": "home",
            },
            {
                "name": "check",
                "in": "query",
                "required": False,
                "description": "one check type only (empty if the instance never ran it); absent or empty: all",
                "schema": {"type": "string", "enum": [*SPECS, ""]},
            },
            WINDOW_PARAM,
        ],
        "responses": {
            "200": _json("History", "hourly rollups for 24h, 7d and 30d, daily for 90d and 365d"),
            "400": _json("Error", "an unknown window or check type"),
            "404": _json("Error", "no instance has this name"),
            **_common(),
        },
    }


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document, as a JSON-ready dict (a new one each call: callers may change it)."""
    return copy.deepcopy(_document())


def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "2fauth-monitor API",
            "version": __version__,
            "summary": "Status and history of the 2FAuth instances this monitor checks",
            "description": (
                "Read-only JSON of the status page. Times are unix seconds. Objects may gain "
                "fields in later versions: ignore the ones you do not know. Every GET also "
                "answers HEAD."
            ),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [{"url": "/"}],
        "security": [{}, {"basicAuth": []}],
        "paths": {
            "/api/v1/status": {
                "get": {
                    "operationId": "getStatus",
                    "summary": "Overall status, every instance and check, incidents and maintenance",
                    "parameters": [WINDOW_PARAM],
                    "responses": {
                        "200": _json("Status", "the status page's data"),
                        "400": _json("Error", "an unknown window"),
                        **_common(),
                    },
                }
            },
            "/api/v1/instances/{name}/history": {"get": _history_operation()},
            PATH: {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "the OpenAPI 3.1 document",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        **_common(),
                    },
                }
            },
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "basicAuth": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "only when web.basic_auth is configured",
                }
            },
        },
    }
