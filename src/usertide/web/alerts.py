"""Alerts: list, read, and record feedback (which teaches the sign-in model)."""

from __future__ import annotations

import asyncio

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from usertide.alerts import AlertStatus
from usertide.alerts.manager import VERDICTS
from usertide.log import LogUnavailable
from usertide.service import Service
from usertide.web.auth import require_admin
from usertide.web.errors import ApiError, json_response
from usertide.web.params import whole_number


class FeedbackBody(msgspec.Struct, forbid_unknown_fields=True):
    verdict: str
    note: str | None = None


async def list_alerts(request: Request) -> Response:
    service = require_admin(request)
    status = request.query_params.get("status")
    if status is not None and status not in {s.value for s in AlertStatus}:
        raise ApiError(400, "invalid_parameter", "'status' must be open, confirmed or dismissed")
    limit = whole_number(request, "limit", 100, 1, 1000)
    alerts = await run_in_threadpool(
        lambda: service.store.alerts(
            status=status, user_id=request.query_params.get("user_id"), limit=limit
        )
    )
    return json_response({"alerts": [msgspec.to_builtins(a) for a in alerts]})


async def stored(service: Service, alert_id: str) -> None:
    """An alert the risk API has just answered with is stored by the engine shortly
    after the answer: wait for it (read your writes)."""
    if service.alerts.claimed(alert_id):
        await asyncio.to_thread(service.alerts.wait_stored, alert_id)


async def get_alert(request: Request) -> Response:
    service = require_admin(request)
    await stored(service, request.path_params["alert_id"])
    alert = service.store.alert_get(request.path_params["alert_id"])
    if alert is None:
        raise ApiError(404, "not_found", "no such alert")
    return json_response(msgspec.to_builtins(alert))


async def apply_feedback(service: Service, alert_id: str, verdict: str, source: str) -> dict:  # type: ignore[type-arg]
    await stored(service, alert_id)
    try:
        alert, event = service.alerts.feedback(alert_id, verdict, source)
    except KeyError as exc:
        raise ApiError(404, "not_found", "no such alert") from exc
    except ValueError as exc:
        raise ApiError(400, "invalid_field", str(exc)) from exc
    try:
        await service.committer.append([event])
    except LogUnavailable as exc:
        raise ApiError(503, "unavailable", str(exc)) from exc
    out: dict = msgspec.to_builtins(alert)  # type: ignore[type-arg]
    return out


async def post_feedback(request: Request) -> Response:
    service = require_admin(request)
    try:
        body = msgspec.json.decode(await request.body(), type=FeedbackBody)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ApiError(400, "invalid_field", f"invalid feedback: {exc}") from exc
    if body.verdict not in VERDICTS:
        raise ApiError(400, "invalid_field", f"'verdict' must be one of {', '.join(VERDICTS)}")
    alert = await apply_feedback(service, request.path_params["alert_id"], body.verdict, "admin")
    return json_response(alert)


def routes() -> list[Route]:
    return [
        Route("/v1/alerts", list_alerts, methods=["GET"]),
        Route("/v1/alerts/{alert_id:str}", get_alert, methods=["GET"]),
        Route("/v1/alerts/{alert_id:str}/feedback", post_feedback, methods=["POST"]),
    ]
