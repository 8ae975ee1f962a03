"""Operations: health, metrics, the OpenAPI document and the JavaScript snippet."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from usertide.service import Service
from usertide.web.auth import require_admin
from usertide.web.errors import ApiError, json_response

STATIC = Path(__file__).parent / "static"


async def healthz(request: Request) -> Response:
    service: Service = request.app.state.service
    runtime = service.runtime
    healthy = runtime.alive and service.committer.healthy and service.loader.healthy
    body: dict[str, object] = {"status": "ok" if healthy else "degraded"}
    try:
        require_admin(request)
    except ApiError:
        return json_response(body, 200 if healthy else 503)
    log_offset = service.committer.last_offset
    body.update(
        log={
            "offset": log_offset,
            "healthy": service.committer.healthy,
            "loaded": service.loader.loaded,
            "load_healthy": service.loader.healthy,
            "segments": service.segments.segments,
        },
        engine={
            "offset": runtime.offset,
            "lag_events": max(0, log_offset - runtime.offset),
            "alive": runtime.alive,
            "users": runtime.engine.user_count(),
        },
    )
    return json_response(body, 200 if healthy else 503)


async def metrics(request: Request) -> Response:
    service = require_admin(request)
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> Response:
    return json_response(request.app.state.openapi)


async def snippet(request: Request) -> Response:
    return FileResponse(
        STATIC / "usertide.js",
        media_type="application/javascript",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )


def routes() -> list[Route]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/usertide.js", snippet, methods=["GET"]),
    ]


__all__ = ["routes"]
