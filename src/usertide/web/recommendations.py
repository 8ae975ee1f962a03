"""Recommendations from the visitor's live session, and the item catalogue.

- ``GET /v1/recommendations?user_id=…`` (or ``anonymous_id``, ``session_id``)
  ``&n=&exclude=&filter=category:shoes&recommender=&exclude_seen=``: the next items for
  the session in progress, from the recommenders that learn every event
  (``recommend/live.py``). The answer waits (briefly) for the engine to apply the
  visitor's latest event taken by the log (``recommend/pending.py``), so every event
  acknowledged before the request counts for that visitor. Already
  purchased items and the session's own are left out (``exclude_session=false`` keeps
  the session's: the raw ranking, as ``usertide eval recommend`` measures it), and with
  ``exclude_seen=true`` everything seen lately.
- ``GET /v1/items/{item_id}/similar``: what goes with an item.
- ``POST /v1/items``: describe items (properties, availability); an unavailable item is
  never recommended, a filter matches described or learned properties.
- ``GET /v1/items/{item_id}``: one item as the catalogue knows it.
- ``GET /v1/recommendations/stats?since=&until=&bucket=hour|day`` (admin): impressions,
  clicks and click-through per recommender, in total and over time.

Every answer has a ``rec_id``: send it back with the impression and click events
(``Recommendation Shown`` / ``Recommendation Clicked``, properties ``rec_id``,
``recommender``, ``item_id``) to measure click-through per recommender.

The admin key (or the dashboard's session) may ask about anyone. The write key (what
a web page holds, so public) has a read-only, rate-limited scope: recommendations for an
``anonymous_id`` or ``session_id`` only (a visitor's own random ids), and similar items.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from usertide.capture.errors import ItemError
from usertide.capture.timestamps import parse_time
from usertide.engine.identity import ANON_PREFIX
from usertide.processors.items import MAX_ID_LENGTH, ItemInteractions, ItemState
from usertide.recommend.stats import BUCKETS, click_through
from usertide.service import Service
from usertide.store.base import Item
from usertide.web.auth import basic_username, require_admin
from usertide.web.errors import ApiError, json_response
from usertide.web.openapi import admin, errors, param, response
from usertide.web.params import json_object, whole_number

DEFAULT_N: Final = 10
MAX_N: Final = 100
MAX_EXCLUDE: Final = 100
MAX_FILTERS: Final = 8
MAX_ITEMS_BODY: Final = 2_000_000
MAX_ITEMS: Final = 10_000
CATCH_UP_SECONDS: Final = 0.5  # how long an answer waits for the engine to catch up
_TRUE = frozenset({"1", "true", "yes"})
_FALSE = frozenset({"0", "false", "no"})


# -- access ------------------------------------------------------------------------
def _access(request: Request) -> tuple[Service, bool]:
    """The service and whether the caller is an admin (else: the write key's scope)."""
    service: Service = request.app.state.service
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    write_key = None
    if scheme.lower() == "basic" and credential:
        write_key = basic_username(header) or ""  # malformed: refused below
    elif scheme.lower() == "bearer" and credential:
        key = credential.strip()
        if service.keys.check("admin", key):
            return service, True
        write_key = key
    elif not header and request.headers.get("x-admin-key") is None:
        write_key = request.query_params.get("key")  # the snippet's GET, like a pixel
    if write_key is None:
        return require_admin(request), True
    if not write_key or service.keys.check("write", write_key) is None:
        raise ApiError(401, "unauthorized", "a write key or the admin key is required")
    address = request.client.host if request.client else "?"
    wait = service.rec_limiter.take(address)
    if wait:
        raise ApiError(
            429,
            "rate_limited",
            "too many recommendation requests from this address with the write key",
            headers={"Retry-After": str(max(1, round(wait)))},
        )
    return service, False


# -- parameters ----------------------------------------------------------------------
def _text(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not raw or len(raw) > MAX_ID_LENGTH:
        raise ApiError(
            400, "invalid_parameter", f"'{name}' must be 1 to {MAX_ID_LENGTH} characters"
        )
    return raw


def _flag(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ApiError(400, "invalid_parameter", f"'{name}' must be true or false")


def _excluded(request: Request) -> list[str]:
    items = [
        i
        for raw in request.query_params.getlist("exclude")
        for i in (p.strip() for p in raw.split(","))
        if i
    ]
    if len(items) > MAX_EXCLUDE:
        raise ApiError(400, "invalid_parameter", f"at most {MAX_EXCLUDE} items in 'exclude'")
    return items


def _filters(request: Request) -> list[tuple[str, str]]:
    out = []
    for raw in request.query_params.getlist("filter"):
        key, sep, value = raw.partition(":")
        if not sep or not key.strip() or not value.strip():
            raise ApiError(
                400, "invalid_parameter", f"'filter' must be property:value (got {raw[:50]!r})"
            )
        out.append((key.strip(), value.strip()))
    if len(out) > MAX_FILTERS:
        raise ApiError(400, "invalid_parameter", f"at most {MAX_FILTERS} filters")
    return out


def _recommender(request: Request, service: Service) -> str | None:
    name = request.query_params.get("recommender")
    if name is not None and name not in service.recommendations.models:
        known = ", ".join(service.recommendations.names)
        raise ApiError(
            400, "invalid_parameter", f"unknown recommender {name[:50]!r}; served: {known}"
        )
    return name


# -- the visitor -----------------------------------------------------------------------
def _visitor(request: Request, is_admin: bool) -> tuple[str, str]:
    """Which of ``user_id``, ``anonymous_id``, ``session_id`` is asked about, and its value."""
    given = {n: _text(request, n) for n in ("user_id", "anonymous_id", "session_id")}
    named = [(n, v) for n, v in given.items() if v is not None]
    if len(named) != 1:
        raise ApiError(
            400, "invalid_parameter", "give exactly one of user_id, anonymous_id, session_id"
        )
    kind, value = named[0]
    if kind == "user_id" and not is_admin:
        raise ApiError(
            403, "forbidden", "the write key may ask for an anonymous_id or a session_id"
        )
    return kind, value


def _user_key(service: Service, kind: str, value: str) -> tuple[str, str | None]:
    """The engine key of the visitor, and the session id if one was asked about."""
    if kind == "user_id":
        return value, None
    if kind == "anonymous_id":
        user = service.runtime.resolve(value)
        return (user if user != value else ANON_PREFIX + value), None
    return service.recommendations.user_of_session(value) or "", value


async def _caught_up(service: Service, offset: int | None) -> None:
    """Wait (briefly) until the engine has applied the visitor's latest event."""
    if offset is not None and service.runtime.offset < offset:
        await asyncio.to_thread(service.runtime.wait_for, offset, CATCH_UP_SECONDS)


def _items_of(service: Service, key: str) -> ItemState | None:
    def read(engine: Any) -> ItemState | None:
        state = engine.lookup(key)
        if state is None:
            return None
        slot = state.slots.get(ItemInteractions.name)
        return msgspec.structs.replace(slot) if isinstance(slot, ItemState) else None

    found: ItemState | None = service.runtime.read(read)
    return found


def _shown(service: Service, answer: list[tuple[str, float]]) -> list[dict[str, Any]]:
    out = []
    for item_id, score in answer:
        entry: dict[str, Any] = {"item_id": item_id, "score": round(score, 6)}
        item = service.recommendations.item(item_id)
        if item is not None and item.properties:
            entry["properties"] = item.properties
        out.append(entry)
    return out


def _rec_id() -> str:
    return "rec_" + secrets.token_hex(8)


# -- endpoints -------------------------------------------------------------------------
async def recommendations(request: Request) -> Response:
    service, is_admin = _access(request)
    kind, value = _visitor(request, is_admin)
    n = whole_number(request, "n", DEFAULT_N, 1, MAX_N)
    exclude = _excluded(request)
    filters = _filters(request)
    name = _recommender(request, service)
    exclude_seen = _flag(request, "exclude_seen")
    exclude_session = _flag(request, "exclude_session", default=True)
    await _caught_up(service, service.latest.offset(kind, value))
    key, asked_session = _user_key(service, kind, value)
    state = _items_of(service, key) if key else None
    session_items: list[str] = []
    session_id = asked_session
    excluded = set(exclude)
    if state is not None:
        if asked_session is None or asked_session == state.session_id:
            session_items, session_id = list(state.items), state.session_id
        excluded.update(state.purchased)
        if exclude_session:
            excluded.update(session_items)
        if exclude_seen:
            excluded.update(state.seen)
    used, answer = service.recommendations.recommend(
        name, session_items, session_id=session_id, n=n, exclude=excluded, filters=filters
    )
    return json_response(
        {
            "rec_id": _rec_id(),
            "recommender": used,
            "items": _shown(service, answer),
            "session_id": session_id,
            "session_items": session_items,
        }
    )


async def similar_items(request: Request) -> Response:
    service, _ = _access(request)
    item_id = request.path_params["item_id"]
    n = whole_number(request, "n", DEFAULT_N, 1, MAX_N)
    filters = _filters(request)
    name = _recommender(request, service)
    if service.recommendations.item(item_id) is None:
        raise ApiError(404, "not_found", "no such item (never seen in an event nor described)")
    used, answer = service.recommendations.similar(name, item_id, n=n, filters=filters)
    return json_response(
        {
            "rec_id": _rec_id(),
            "recommender": used,
            "item_id": item_id,
            "items": _shown(service, answer),
        }
    )


async def get_item(request: Request) -> Response:
    service = require_admin(request)
    item = service.recommendations.item(request.path_params["item_id"])
    if item is None:
        raise ApiError(404, "not_found", "no such item (never seen in an event nor described)")
    return json_response(msgspec.to_builtins(item))


class _ItemIn(msgspec.Struct, forbid_unknown_fields=True):
    item_id: str
    properties: dict[str, Any] = msgspec.field(default_factory=dict)
    available: bool = True


async def put_items(request: Request) -> Response:
    service = require_admin(request)
    body = await json_object(request, MAX_ITEMS_BODY)
    raw = body.get("items", [body])
    if not isinstance(raw, list) or not raw:
        raise ApiError(400, "invalid_body", "'items' must be a non-empty array of items")
    if len(raw) > MAX_ITEMS:
        raise ApiError(400, "invalid_body", f"at most {MAX_ITEMS} items a request")
    items = []
    for i, entry in enumerate(raw):
        try:
            given = msgspec.convert(entry, _ItemIn)
        except msgspec.ValidationError as exc:
            raise ApiError(400, "invalid_body", f"items[{i}]: {exc}") from exc
        if not given.item_id.strip() or len(given.item_id) > MAX_ID_LENGTH:
            raise ApiError(
                400, "invalid_body", f"items[{i}].item_id must be 1 to {MAX_ID_LENGTH} characters"
            )
        items.append(
            Item(
                item_id=given.item_id.strip(),
                properties=given.properties,
                available=given.available,
                updated=time.time(),
            )
        )
    await run_in_threadpool(service.store.items_put, items)
    service.recommendations.describe(items)
    return json_response({"items": len(items)}, 200)


async def stats(request: Request) -> Response:
    service = require_admin(request)
    params = request.query_params
    until = _time(params.get("until"), "until") or datetime.now(UTC)
    since = _time(params.get("since"), "since") or until - timedelta(days=7)
    bucket = params.get("bucket", "hour")
    if bucket not in BUCKETS:
        raise ApiError(400, "invalid_parameter", f"'bucket' must be one of {', '.join(BUCKETS)}")
    if since >= until:
        raise ApiError(400, "invalid_parameter", "'since' must be before 'until'")
    found = await run_in_threadpool(click_through, service.store, since, until, bucket)
    body = msgspec.to_builtins(found)
    body["served"] = service.recommendations.describe_models()
    return json_response(body)


def _time(raw: str | None, name: str) -> datetime | None:
    try:
        return parse_time(raw, name)
    except ItemError as exc:
        raise ApiError(400, "invalid_parameter", exc.message) from exc


def routes() -> list[Route]:
    return [
        Route("/v1/recommendations/stats", stats, methods=["GET"]),
        Route("/v1/recommendations", recommendations, methods=["GET"]),
        Route("/v1/items", put_items, methods=["POST"]),
        Route("/v1/items/{item_id:path}/similar", similar_items, methods=["GET"]),
        Route("/v1/items/{item_id:path}", get_item, methods=["GET"]),
    ]


# -- OpenAPI ---------------------------------------------------------------------------
_SECURITY: list[dict[str, list[str]]] = [{"adminKey": []}, {"writeKeyBasic": []}]
_ANSWERED = {
    "type": "object",
    "properties": {
        "item_id": {"type": "string"},
        "score": {"type": "number"},
        "properties": {"type": "object"},
    },
}
_ANSWER = {
    "type": "object",
    "required": ["rec_id", "recommender", "items"],
    "properties": {
        "rec_id": {"type": "string"},
        "recommender": {"type": "string"},
        "items": {"type": "array", "items": _ANSWERED},
        "session_id": {"type": ["string", "null"]},
        "session_items": {"type": "array", "items": {"type": "string"}},
        "item_id": {"type": "string"},
    },
}
_COMMON = [
    param("n", schema={"type": "integer", "minimum": 1, "maximum": MAX_N}),
    param("filter", schema={"type": "string", "pattern": "^[^:]+:.+$"}),
    param("recommender"),
]
_ITEM = {
    "type": "object",
    "required": ["item_id"],
    "properties": {
        "item_id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
        "properties": {"type": "object"},
        "available": {"type": "boolean"},
    },
}
_RATE = {"type": ["number", "null"]}
_STATS = {
    "type": "object",
    "properties": {
        "since": {"type": "string", "format": "date-time"},
        "until": {"type": "string", "format": "date-time"},
        "bucket": {"type": "string", "enum": list(BUCKETS)},
        "recommenders": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "recommender": {"type": "string"},
                    "impressions": {"type": "integer"},
                    "clicks": {"type": "integer"},
                    "clicked_impressions": {"type": "integer"},
                    "ctr": _RATE,
                    "ctr_low": _RATE,
                    "ctr_high": _RATE,
                },
            },
        },
        "series": {"type": "array", "items": {"type": "object"}},
        "served": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "recommender": {"type": "string"},
                    "default": {"type": "boolean"},
                    "items": {"type": "integer"},
                },
            },
        },
    },
}
OPENAPI: dict[str, dict[str, Any]] = {
    "/v1/recommendations/stats": {
        "get": admin(
            {
                "summary": "Click-through per recommender, in total and over time",
                "tags": ["recommendations"],
                "parameters": [
                    param("since", schema={"type": "string", "format": "date-time"}),
                    param("until", schema={"type": "string", "format": "date-time"}),
                    param("bucket", schema={"type": "string", "enum": list(BUCKETS)}),
                ],
                "responses": {"200": response("Click-through", _STATS), **errors(400)},
            }
        )
    },
    "/v1/recommendations": {
        "get": {
            "summary": "The next items for a visitor's session in progress",
            "tags": ["recommendations"],
            "security": _SECURITY,
            "parameters": [
                param("user_id"),
                param("anonymous_id"),
                param("session_id"),
                *_COMMON,
                param("exclude"),
                param("exclude_seen", schema={"type": "boolean"}),
                param("exclude_session", schema={"type": "boolean"}),
            ],
            "responses": {
                "200": response("Recommendations", _ANSWER),
                **errors(400, 401, 403, 429),
            },
        }
    },
    "/v1/items/{item_id}/similar": {
        "get": {
            "summary": "Items that go with an item",
            "tags": ["recommendations"],
            "security": _SECURITY,
            "parameters": [param("item_id", "path"), *_COMMON],
            "responses": {
                "200": response("Similar items", _ANSWER),
                **errors(400, 401, 404, 429),
            },
        }
    },
    "/v1/items": {
        "post": admin(
            {
                "summary": "Describe items: properties and availability",
                "tags": ["recommendations"],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {
                                        "type": "object",
                                        "required": ["items"],
                                        "properties": {"items": {"type": "array", "items": _ITEM}},
                                    },
                                    _ITEM,
                                ]
                            }
                        }
                    },
                },
                "responses": {
                    "200": response(
                        "How many items were stored",
                        {"type": "object", "properties": {"items": {"type": "integer"}}},
                    ),
                    **errors(400, 413),
                },
            }
        )
    },
    "/v1/items/{item_id}": {
        "get": admin(
            {
                "summary": "An item as the catalogue knows it",
                "tags": ["recommendations"],
                "parameters": [param("item_id", "path")],
                "responses": {
                    "200": response("The item", _ITEM),
                    **errors(404),
                },
            }
        )
    },
}
