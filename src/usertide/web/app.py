"""The ASGI application: routes, error handlers, CORS for the snippet, lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from usertide.service import Service
from usertide.web import registry
from usertide.web.errors import (
    ApiError,
    api_error_handler,
    http_error_handler,
    server_error_handler,
)
from usertide.web.fastpath import IngestFastPath
from usertide.web.session import SessionRegistry


def create_app(service: Service) -> ASGIApp:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = Starlette(
        routes=registry.routes(),
        middleware=[
            # Browsers send events from the site's own origin; credentials are not used.
            Middleware(
                CORSMiddleware,
                allow_origins=["*"],
                allow_methods=["GET", "POST"],
                allow_headers=["*"],
                expose_headers=["Retry-After"],
                max_age=86400,
            ),
        ],
        exception_handlers={
            ApiError: api_error_handler,
            HTTPException: http_error_handler,
            Exception: server_error_handler,
        },
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.openapi = registry.openapi()
    app.state.sessions = SessionRegistry()  # dashboard sign-ins, in memory
    return IngestFastPath(app, service)
