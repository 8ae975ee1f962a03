"""``POST /v1/trends``, ``POST /v1/funnels`` and ``POST /v1/funnels/users``.

Admin key (or the dashboard's session). Each query runs as SQL in the store, after
the store holds everything acknowledged before the request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from usertide.analytics.common import bounded_int
from usertide.analytics.errors import AnalyticsError
from usertide.analytics.funnels import parse_funnel, people
from usertide.analytics.report import funnel_report
from usertide.analytics.sql import Dialect
from usertide.analytics.trends import parse_trend, run_trend
from usertide.engine.identity import ANON_PREFIX
from usertide.service import Service
from usertide.store import Store
from usertide.web.auth import require_admin
from usertide.web.errors import ApiError, json_response
from usertide.web.openapi import admin, errors, response

MAX_BODY = 64 * 1024
Q = TypeVar("Q")


async def _body(request: Request) -> tuple[Service, dict[str, Any]]:
    service = require_admin(request)
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApiError(413, "too_large", f"the query is larger than {MAX_BODY} bytes")
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_parameter", "the body must be a JSON object")
    return service, body


async def _run(service: Service, work: Callable[[], Any]) -> Response:
    await service.caught_up()
    return json_response(await run_in_threadpool(work))


def _invalid(exc: AnalyticsError) -> ApiError:
    return ApiError(400, "invalid_parameter", exc.message)


async def _analyse(
    request: Request,
    parse: Callable[[object, Dialect], Q],
    answer: Callable[[Store, Q], dict[str, Any]],
) -> Response:
    """Parse the body into a query for the store's dialect, then answer it in the store."""
    service, body = await _body(request)
    store = service.store
    try:
        query = parse(body, store.dialect)
    except AnalyticsError as exc:
        raise _invalid(exc) from exc
    return await _run(service, lambda: answer(store, query))


async def trends(request: Request) -> Response:
    return await _analyse(request, parse_trend, run_trend)


async def funnels(request: Request) -> Response:
    return await _analyse(request, parse_funnel, funnel_report)


async def funnel_users(request: Request) -> Response:
    service, body = await _body(request)
    store = service.store
    funnel = {k: v for k, v in body.items() if k not in ("step", "status", "limit", "cursor")}
    try:
        query = parse_funnel(funnel, store.dialect)
        step = bounded_int(body, "step", 2, 1, len(query.steps))
        limit = bounded_int(body, "limit", 100, 1, 1000)
    except AnalyticsError as exc:
        raise _invalid(exc) from exc
    status = body.get("status", "dropped")
    if status not in ("dropped", "converted"):
        raise ApiError(400, "invalid_parameter", "'status' must be dropped or converted")
    if status == "dropped" and step < 2:
        raise ApiError(400, "invalid_parameter", "'step' must be 2 or more for dropped users")
    cursor = body.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise ApiError(400, "invalid_parameter", "'cursor' must come from 'next_cursor'")

    def work() -> dict[str, Any]:
        found = people(store, query, step, status, limit, cursor)
        return {
            "users": [_person(p) for p in found],
            "next_cursor": found[-1] if len(found) == limit else None,
        }

    return await _run(service, work)


def _person(key: str) -> dict[str, Any]:
    if key.startswith(ANON_PREFIX):
        return {"user_id": None, "anonymous_id": key[len(ANON_PREFIX) :], "anonymous": True}
    return {"user_id": key, "anonymous_id": None, "anonymous": False}


def routes() -> list[Route]:
    return [
        Route("/v1/trends", trends, methods=["POST"]),
        Route("/v1/funnels", funnels, methods=["POST"]),
        Route("/v1/funnels/users", funnel_users, methods=["POST"]),
    ]


_WHERE = {
    "type": "object",
    "description": "field path → value, list of values, or {operator: value} with "
    "operators = != > >= < <= contains is_set",
}
_POSTERIOR = {
    "type": "object",
    "properties": {k: {"type": "number"} for k in ("mean", "low", "high")},
}
_STEPS = {
    "type": "array",
    "minItems": 2,
    "maxItems": 20,
    "items": {
        "type": "object",
        "required": ["event"],
        "properties": {"event": {"type": "string"}, "where": _WHERE, "page": {"type": "string"}},
    },
}
_FUNNEL: dict[str, Any] = {
    "type": "object",
    "required": ["steps", "from", "to"],
    "properties": {
        "steps": _STEPS,
        "window": {"type": ["string", "number"], "description": "90s, 30m, 12h, 3d, 2w or seconds"},
        "order": {"enum": ["sequential", "strict"]},
        "from": {"type": "string", "format": "date-time"},
        "to": {"type": "string", "format": "date-time"},
        "breakdown": {"type": "string", "description": "a field path, e.g. properties.category"},
        "breakdown_limit": {"type": "integer", "minimum": 1, "maximum": 50},
        "prior": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
    },
}
_TREND = {
    "type": "object",
    "required": ["events", "from", "to"],
    "properties": {
        "events": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 20},
        "measure": {
            "oneOf": [
                {"enum": ["count", "users"]},
                {"type": "object", "properties": {"sum": {"type": "string"}}},
                {"type": "object", "properties": {"avg": {"type": "string"}}},
            ]
        },
        "interval": {"enum": ["minute", "hour", "day", "week"]},
        "from": {"type": "string", "format": "date-time"},
        "to": {"type": "string", "format": "date-time"},
        "breakdown": {"type": "string"},
        "breakdown_limit": {"type": "integer", "minimum": 1, "maximum": 100},
        "compare": {"enum": ["previous_period"]},
        "where": _WHERE,
    },
}


def _post(summary: str, schema: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": admin(
            {
                "summary": summary,
                "tags": ["analytics"],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": schema}},
                },
                "responses": {"200": response(summary, answer), **errors(400, 413)},
            }
        )
    }


OPENAPI: dict[str, dict[str, Any]] = {
    "/v1/trends": _post(
        "Event counts, unique users, or a property's sum or average over time",
        _TREND,
        {
            "type": "object",
            "properties": {"series": {"type": "array"}, "previous": {"type": "array"}},
        },
    ),
    "/v1/funnels": _post(
        "Ordered steps counted per person, with Bayesian conversion rates",
        _FUNNEL,
        {
            "type": "object",
            "properties": {
                "steps": {"type": "array"},
                "overall": {"type": "object", "properties": {"posterior": _POSTERIOR}},
                "breakdown": {"type": "array"},
            },
        },
    ),
    "/v1/funnels/users": _post(
        "The people who dropped at or converted to a step of a funnel (paginated)",
        {
            **_FUNNEL,
            "properties": {
                **_FUNNEL["properties"],
                "step": {"type": "integer", "minimum": 1},
                "status": {"enum": ["dropped", "converted"]},
                "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
                "cursor": {"type": ["string", "null"]},
            },
        },
        {"type": "object", "properties": {"users": {"type": "array"}, "next_cursor": {}}},
    ),
}
