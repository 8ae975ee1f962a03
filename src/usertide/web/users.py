"""``GET /v1/users?search=&tag=&limit=&cursor=``: find users. Admin key required.

Searched with SQL over the profiles the engine's checkpoints write (the store's
``search_users``), so results reflect the last checkpoint (``USERTIDE_CHECKPOINT_INTERVAL``,
a second by default): a user's latest events, and the tags they change, may show up
one checkpoint later. ``GET /v1/users/{user_id}`` answers from the engine itself.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from usertide.engine.identity import ANON_PREFIX
from usertide.web.auth import require_admin
from usertide.web.errors import ApiError, json_response
from usertide.web.openapi import admin, errors, param, response
from usertide.web.params import whole_number

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_SEARCH = 256
MAX_TAG = 100
MAX_CURSOR = 2048


async def search_users(request: Request) -> Response:
    service = require_admin(request)
    params = request.query_params
    search = _text(params.get("search"), "search", MAX_SEARCH)
    tag = _text(params.get("tag"), "tag", MAX_TAG)
    limit = whole_number(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    after = _cursor(params.get("cursor"))
    await service.caught_up()
    # One more than asked: whether there is a next page, without an empty last one.
    found = await run_in_threadpool(
        lambda: service.store.search_users(search=search, tag=tag, after=after, limit=limit + 1)
    )
    page = found[:limit]
    next_cursor = _encode_cursor(page[-1][0]) if len(found) > limit else None
    return json_response(
        {"users": [_summary(key, profile) for key, profile in page], "next_cursor": next_cursor}
    )


def _summary(key: str, stored: dict[str, Any]) -> dict[str, Any]:
    profile = stored.get("profile") or {}
    tags = (stored.get("tags") or {}).get("tags") or []
    anonymous = key.startswith(ANON_PREFIX)
    return {
        "user_id": None if anonymous else key,
        "anonymous_id": key[len(ANON_PREFIX) :] if anonymous else None,
        "anonymous": anonymous,
        "tags": list(tags),
        "traits": dict(profile.get("traits") or {}),
        "last_seen": profile.get("last_seen"),
    }


def _text(raw: str | None, name: str, limit: int) -> str | None:
    if raw is None or raw == "":
        return None
    if len(raw) > limit:
        raise ApiError(400, "invalid_parameter", f"'{name}' must be at most {limit} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise ApiError(400, "invalid_parameter", f"'{name}' must not hold control characters")
    return raw


# The cursor is the last key of the page, base64url-encoded: opaque to clients, and a
# key needs no escaping in a URL.
def _encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _cursor(raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        if not raw or len(raw) > MAX_CURSOR:
            raise ValueError(raw)
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        if _encode_cursor(key) != raw:
            raise ValueError(raw)
    except (ValueError, binascii.Error) as exc:  # UnicodeDecodeError is a ValueError
        raise ApiError(400, "invalid_parameter", "'cursor' must come from 'next_cursor'") from exc
    return key


def routes() -> list[Route]:
    return [Route("/v1/users", search_users, methods=["GET"])]


_USER = {
    "type": "object",
    "properties": {
        "user_id": {"type": ["string", "null"]},
        "anonymous_id": {"type": ["string", "null"]},
        "anonymous": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "traits": {"type": "object"},
        "last_seen": {"type": ["string", "null"], "format": "date-time"},
    },
}

OPENAPI: dict[str, dict[str, Any]] = {
    "/v1/users": {
        "get": admin(
            {
                "summary": "Find users by id, trait value or tag (as of the last checkpoint)",
                "description": (
                    "search: a case-insensitive substring of the user id (or a visitor's "
                    "anonymous id) or of any trait value; tag: one of the user's tags "
                    "(an RFM segment, mobile-first, night-owl, big-spender, "
                    "interest:<category>). Paginated: pass next_cursor as cursor."
                ),
                "tags": ["users"],
                "parameters": [
                    param("search", schema={"type": "string", "maxLength": MAX_SEARCH}),
                    param("tag", schema={"type": "string", "maxLength": MAX_TAG}),
                    param(
                        "limit",
                        schema={"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                    ),
                    param("cursor", schema={"type": "string"}),
                ],
                "responses": {
                    "200": response(
                        "A page of users, in id order",
                        {
                            "type": "object",
                            "properties": {
                                "users": {"type": "array", "items": _USER},
                                "next_cursor": {"type": ["string", "null"]},
                            },
                        },
                    ),
                    **errors(400),
                },
            }
        )
    }
}
