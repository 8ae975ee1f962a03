"""Query endpoints: users, events, failed events. Admin key required."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from usertide.capture.errors import ItemError
from usertide.capture.timestamps import parse_time
from usertide.engine.identity import ANON_PREFIX
from usertide.events import event_to_builtins
from usertide.store import EventQuery
from usertide.web.auth import require_admin
from usertide.web.errors import ApiError, json_response
from usertide.web.params import whole_number

MAX_LIMIT = 1000
MAX_OFFSET = 2**63 - 1  # log offsets are signed 64-bit in every store


async def get_user(request: Request) -> Response:
    service = require_admin(request)
    user_id = request.path_params["user_id"]
    runtime = service.runtime
    key = runtime.resolve(user_id)
    view = runtime.user(key)
    if view is None:
        key = ANON_PREFIX + user_id
        view = runtime.user(key)
    if view is None:
        raise ApiError(404, "not_found", "no such user")
    profile = view.get("profile", {})
    tags = view.get("tags", {})  # the UserTags processor's view
    shown = ("profile", "sessions", "features", "tags")
    body = {
        "user_id": None if key.startswith(ANON_PREFIX) else key,
        "anonymous": key.startswith(ANON_PREFIX),
        "tags": tags.get("tags", []),
        "tag_reasons": tags.get("reasons", {}),
        "segments": tags.get("segments", {}),
        "profile": profile,
        "session": view.get("sessions", {}),
        "features": view.get("features", {}),
        **{k: v for k, v in view.items() if k not in shown},
    }
    return json_response(body)


async def delete_user(request: Request) -> Response:
    service = require_admin(request)
    user_id = request.path_params["user_id"]
    aliases = service.runtime.linked_anonymous_ids(user_id)
    keys = [user_id, ANON_PREFIX + user_id, *(ANON_PREFIX + a for a in aliases)]
    service.runtime.forget(keys)
    report = await run_in_threadpool(service.erase_user, user_id)
    service.runtime.forget(keys)
    service.recommendations.forget(keys)
    return json_response({"erased": msgspec.to_builtins(report)})


def _time_param(request: Request, name: str) -> datetime | None:
    try:
        return parse_time(request.query_params.get(name), name)
    except ItemError as exc:
        raise ApiError(400, "invalid_parameter", exc.message) from exc


async def list_events(request: Request) -> Response:
    service = require_admin(request)
    params = request.query_params
    limit = whole_number(request, "limit", 100, 1, MAX_LIMIT)
    cursor = None
    if params.get("cursor") is not None:
        cursor = whole_number(request, "cursor", 0, 0, MAX_OFFSET)
    user_id = params.get("user_id")
    linked = service.runtime.linked_anonymous_ids(user_id) if user_id else ()
    query = EventQuery(
        user_id=user_id,
        linked_anonymous_ids=linked,
        anonymous_id=params.get("anonymous_id"),
        name=params.get("name"),
        since=_time_param(request, "since"),
        until=_time_param(request, "until"),
        after_offset=cursor,
        limit=limit,
    )
    await service.caught_up()
    events = await run_in_threadpool(service.store.query_events, query)
    next_cursor = str(events[-1].offset) if len(events) == limit else None
    body: dict[str, Any] = {
        "events": [event_to_builtins(e) for e in events],
        "next_cursor": next_cursor,
    }
    return json_response(body)


async def list_failed(request: Request) -> Response:
    service = require_admin(request)
    limit = whole_number(request, "limit", 100, 1, MAX_LIMIT)
    reason = request.query_params.get("reason")
    await service.caught_up()
    failed = await run_in_threadpool(service.store.query_failed, limit, reason)
    total = await run_in_threadpool(service.store.count_failed)
    return json_response(
        {"failed_events": [msgspec.to_builtins(f) for f in failed], "total": total}
    )


def routes() -> list[Route]:
    return [
        Route("/v1/users/{user_id:path}", get_user, methods=["GET"]),
        Route("/v1/users/{user_id:path}", delete_user, methods=["DELETE"]),
        Route("/v1/events", list_events, methods=["GET"]),
        Route("/v1/failed-events", list_failed, methods=["GET"]),
    ]
