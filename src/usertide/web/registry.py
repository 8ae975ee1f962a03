"""Every module of the HTTP interface: their routes and their OpenAPI description.

The core modules are described in ``openapi.py``; later ones describe their own paths
in an ``OPENAPI`` mapping (path → operations) beside their ``routes()``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from starlette.routing import BaseRoute

from usertide.web import (
    alerts,
    analytics,
    assets,
    dashboard,
    feedback,
    ingest,
    models,
    ops,
    overview,
    predict,
    query,
    recommendations,
    risk,
    sdkconfig,
    session,
    sessions,
    stream,
    users,
)
from usertide.web.openapi import build_openapi

CORE: tuple[ModuleType, ...] = (ingest, query, risk, alerts, feedback, ops, sdkconfig)
# Modules with their own OPENAPI mapping. Order matters where paths overlap: a route
# listed earlier wins (Starlette tries routes in order).
# users comes before query's /v1/users/{user_id} (distinct paths; kept first anyway).
DESCRIBED: tuple[ModuleType, ...] = (
    users,
    analytics,
    stream,
    overview,
    predict,
    sessions,
    models,
    recommendations,
    session,
    assets,
    dashboard,
)
MODULES = (*DESCRIBED, *CORE)


def routes() -> list[BaseRoute]:
    return [route for module in MODULES for route in module.routes()]


def openapi() -> dict[str, Any]:
    return build_openapi(*(module.OPENAPI for module in DESCRIBED))
