"""``GET /v1/overview``: what the dashboard's live overview shows, in one answer.

Counts are by arrival time over the last ``minutes`` (see the store's overview
queries); "active users" are those with an event in the last five minutes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from usertide.service import Service
from usertide.web.auth import require_admin
from usertide.web.errors import json_response
from usertide.web.openapi import admin, errors, param
from usertide.web.params import whole_number

PATH = "/v1/overview"
DEFAULT_MINUTES = 60
MAX_MINUTES = 24 * 60
ACTIVE_MINUTES = 5
TOP = 10
RECENT_FAILED = 10


def _minutes(request: Request) -> int:
    return whole_number(request, "minutes", DEFAULT_MINUTES, 1, MAX_MINUTES)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _ranked(rows: list[tuple[str, int]]) -> list[dict[str, Any]]:
    return [{"value": value, "count": count} for value, count in rows]


def overview(service: Service, minutes: int, now: datetime) -> dict[str, Any]:
    store = service.store
    this_minute = now.replace(second=0, microsecond=0)
    since = this_minute - timedelta(minutes=minutes - 1)
    counted = dict(store.received_per_minute(since, this_minute + timedelta(minutes=1)))
    # Every minute of the window, the quiet ones as 0, so the chart's axis is steady.
    per_minute = [
        (since + timedelta(minutes=i), counted.get(since + timedelta(minutes=i), 0))
        for i in range(minutes)
    ]
    log_offset = service.committer.last_offset
    engine_offset = service.runtime.offset
    return {
        "generated_at": _iso(now),
        "minutes": minutes,
        "events_per_minute": [[_iso(t), n] for t, n in per_minute],
        "events_in_window": sum(n for _, n in per_minute),
        "events_total": store.count_events(),
        "active_users": store.active_users(now - timedelta(minutes=ACTIVE_MINUTES)),
        "active_minutes": ACTIVE_MINUTES,
        "top_events": _ranked(store.top_received("name", since, TOP)),
        "top_pages": _ranked(store.top_received("page_path", since, TOP)),
        "countries": _ranked(store.top_received("country", since, TOP)),
        "sources": _ranked(store.top_sources(since, TOP)),
        "failed": {
            "total": store.count_failed(),
            "reasons": [
                {"reason": reason, "count": n} for reason, n in store.failed_reasons(since)
            ],
            # The raw input stays out: it can be large, and /v1/failed-events has it.
            "recent": [
                {
                    "id": f.id,
                    "reason": f.reason.value,
                    "message": f.message,
                    "field": f.field,
                    "source": f.source,
                    "received_at": _iso(f.received_at),
                }
                for f in store.query_failed(RECENT_FAILED)
            ],
        },
        "engine": {
            "log_offset": log_offset,
            "engine_offset": engine_offset,
            "lag_events": max(0, log_offset - engine_offset),
            "alive": service.runtime.alive,
        },
    }


async def get_overview(request: Request) -> Response:
    service = require_admin(request)
    minutes = _minutes(request)
    await service.caught_up()  # the counts include everything acknowledged before
    body = await run_in_threadpool(overview, service, minutes, datetime.now(UTC))
    return json_response(body)


def routes() -> list[Route]:
    return [Route(PATH, get_overview, methods=["GET"])]


_RANKED = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"value": {"type": "string"}, "count": {"type": "integer"}},
    },
}

OPENAPI: dict[str, dict[str, Any]] = {
    PATH: {
        "get": admin(
            {
                "summary": "The live overview: traffic, active users, top values, failures, lag",
                "description": (
                    "Counted by arrival time over the last `minutes` (default 60): events"
                    " per minute (every minute, oldest first), top events, pages,"
                    " countries and sources (utm_source, another site's referrer or"
                    " (direct)), failed events by reason; people active in the last 5"
                    " minutes; the engine's lag behind the log. Admin key or dashboard"
                    " session."
                ),
                "tags": ["dashboard"],
                "parameters": [
                    param(
                        "minutes", schema={"type": "integer", "minimum": 1, "maximum": MAX_MINUTES}
                    )
                ],
                "responses": {
                    "200": {
                        "description": "The overview",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "events_per_minute": {"type": "array"},
                                        "active_users": {"type": "integer"},
                                        "top_events": _RANKED,
                                        "top_pages": _RANKED,
                                        "countries": _RANKED,
                                        "sources": _RANKED,
                                        "failed": {"type": "object"},
                                        "engine": {"type": "object"},
                                    },
                                }
                            }
                        },
                    },
                    **errors(400),
                },
            }
        )
    }
}

__all__ = ["OPENAPI", "overview", "routes"]
