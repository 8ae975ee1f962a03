"""Every route the app serves is in the OpenAPI description, with every method."""

from __future__ import annotations

import re

from starlette.routing import Route

from usertide.web import alerts, feedback, ingest, ops, query, risk, sdkconfig
from usertide.web.openapi import build_openapi

MODULES = (ingest, query, risk, alerts, feedback, ops, sdkconfig)


def served() -> set[tuple[str, str]]:
    routes: list[Route] = [route for module in MODULES for route in module.routes()]
    return {
        (method.lower(), re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path))
        for route in routes
        for method in (route.methods or set()) - {"HEAD"}
    }


def test_every_route_is_documented() -> None:
    paths = build_openapi()["paths"]
    documented = {(method, path) for path, ops_ in paths.items() for method in ops_}
    assert served() - documented == set()
    assert documented - served() == set()


def test_every_ingestion_path_is_a_route() -> None:
    assert {("post", path) for path in ingest.paths()} <= served()
