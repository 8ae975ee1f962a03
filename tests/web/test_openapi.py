"""Every route the app serves is in the OpenAPI description, with every method."""

from __future__ import annotations

import re

from starlette.routing import Route

from usertide.web import ingest, registry


def served() -> set[tuple[str, str]]:
    routes = [route for route in registry.routes() if isinstance(route, Route)]
    return {
        (method.lower(), re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path))
        for route in routes
        for method in (route.methods or set()) - {"HEAD"}
    }


def test_every_route_is_documented() -> None:
    paths = registry.openapi()["paths"]
    documented = {(method, path) for path, ops_ in paths.items() for method in ops_}
    assert served() - documented == set()
    assert documented - served() == set()


def test_every_ingestion_path_is_a_route() -> None:
    assert {("post", path) for path in ingest.paths()} <= served()
