"""The OpenAPI 3.1 contract of /api/v1: valid, served, naming exactly the routes, documenting every
field the server sends, and kept by the live server under schemathesis' fuzzing."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from starlette.routing import Route

from monitor import config
from monitor.scheduler import Monitor
from monitor.web import create_app, openapi
from tests.conftest import Site


def test_the_served_document_is_valid_openapi_3_1(site: Site) -> None:
    response = site.get(openapi.PATH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    spec = response.json()
    assert spec["openapi"].startswith("3.1")
    validate(spec)  # raises on any error; picks the 3.1 validator from the version
    assert spec == openapi.document()


def test_the_document_names_exactly_the_api_routes_and_their_methods() -> None:
    settings_ = config.from_mapping({"instances": [{"name": "home", "url": "http://10.0.0.1"}]}, env={})
    app = create_app(Monitor(settings_, None))
    routes = {
        route.path: (route.methods or set()) - {"HEAD"}
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith("/api/")
    }
    documented = {path: {m.upper() for m in ops} for path, ops in openapi.document()["paths"].items()}
    assert routes == documented
    for route in app.routes:  # every GET also answers HEAD, as the document says
        if isinstance(route, Route) and route.path.startswith("/api/"):
            assert "HEAD" in (route.methods or set())


def _closed(spec: dict[str, Any]) -> dict[str, Any]:
    """The component schemas with every object closed: a field the document does not name fails."""
    schemas = copy.deepcopy(spec["components"]["schemas"])

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node.setdefault("additionalProperties", False)
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schemas)
    return {"components": {"schemas": schemas}}


@pytest.mark.parametrize(
    ("path", "schema", "code"),
    [
        ("/api/v1/status", "Status", 200),
        ("/api/v1/status?window=24h", "Status", 200),
        ("/api/v1/instances/home/history?window=7d", "History", 200),
        ("/api/v1/instances/office/history?check=live&window=24h", "History", 200),
        ("/api/v1/instances/family/history?window=365d", "History", 200),
        ("/api/v1/status?window=1y", "Error", 400),
        ("/api/v1/instances/home/history?check=nope", "Error", 400),
        ("/api/v1/instances/nobody/history", "Error", 404),
    ],
)
def test_every_field_the_server_sends_is_documented(site: Site, path: str, schema: str, code: int) -> None:
    response = site.get(path)
    assert response.status_code == code
    root = {**_closed(openapi.document()), "$ref": f"#/components/schemas/{schema}"}
    jsonschema.Draft202012Validator(root).validate(response.json())


def test_the_history_has_something_to_check(site: Site) -> None:
    """The fuzzing below meets real data: instances with results, rollups and incidents."""
    body = site.get("/api/v1/status").json()
    assert body["incidents"] and all(i["checks"] for i in body["instances"])
    history = site.get("/api/v1/instances/office/history?window=24h").json()
    assert history["results"] and history["rollups"]


# From the document in code (test_the_served_document_is_valid_openapi_3_1 shows the server serves
# the same), called against the live server: schemathesis' lazy from_fixture does not run on pytest 9.
schema = schemathesis.openapi.from_dict(openapi.document())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_the_live_server_keeps_its_contract(case: Any, site: Site) -> None:
    """No 5xx, every status and content type documented, every body matching its schema."""
    case.call_and_validate(base_url=site.url)
