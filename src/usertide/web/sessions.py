"""``GET /v1/sessions``: sessions with their features, anomaly score and reasons.

Read from the store's ``sessions``, which every engine checkpoint (once a second by
default) rewrites for the users who changed, and once more when a session closes: a
live session is shown as of the last checkpoint. Reasons are written from the model
version that gave the score, against the percentiles of the sessions it learned from.
Admin key required.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from usertide.capture.errors import ItemError
from usertide.capture.timestamps import parse_time
from usertide.engine.base import Reason
from usertide.engine.identity import ANON_PREFIX
from usertide.processors.features import FEATURES
from usertide.service import Service
from usertide.store.base import SessionQuery, SessionRecord
from usertide.web.auth import require_admin
from usertide.web.errors import ApiError, json_response
from usertide.web.openapi import admin, errors, param, response
from usertide.web.params import whole_number

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
ORDERS = ("recent", "score")
LABELS = ("Normal", "Anomaly")


async def list_sessions(request: Request) -> Response:
    service = require_admin(request)
    params = request.query_params
    keys: list[str] = []
    if (user_id := params.get("user_id")) is not None:
        keys += [user_id, *(ANON_PREFIX + a for a in service.runtime.linked_anonymous_ids(user_id))]
    if (anonymous_id := params.get("anonymous_id")) is not None:
        keys.append(ANON_PREFIX + anonymous_id)
    order = params.get("order", "recent")
    if order not in ORDERS:
        raise ApiError(400, "invalid_parameter", "'order' must be recent or score")
    label = params.get("label")
    if label is not None and label not in LABELS:
        raise ApiError(400, "invalid_parameter", "'label' must be Normal or Anomaly")
    limit = whole_number(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    query = SessionQuery(
        user_keys=tuple(keys),
        since=_time(params.get("since"), "since"),
        until=_time(params.get("until"), "until"),
        min_score=_score(params.get("min_score")),
        label=label,
        order=order,
        after=_cursor(params.get("cursor")),
        limit=limit + 1,
    )
    found = await run_in_threadpool(service.store.sessions, query)
    page = found[:limit]
    next_cursor = _encode_cursor(page[-1], order) if len(found) > limit else None
    return json_response(
        {"sessions": [present(service, r) for r in page], "next_cursor": next_cursor}
    )


def present(service: Service, record: SessionRecord) -> dict[str, Any]:
    anomaly = dict(record.anomaly) if record.anomaly else None
    if anomaly is not None:
        model = service.session_trainer.models.get(int(anomaly.get("model_version") or 0))
        reasons: tuple[Reason, ...] = ()
        if model is not None and all(n in record.features for n in FEATURES):
            x = [record.features[n] for n in FEATURES]
            score = float(anomaly.get("score") or 0.0)
            reasons = model.reasons(x, score) if anomaly.get("label") == "Anomaly" else ()
            reasons = reasons or model.card.reasons(x)
        anomaly["reasons"] = [{"code": r.code, "message": r.message} for r in reasons]
    return {
        "session_id": record.session_id,
        "user_id": record.user_id,
        "anonymous_id": record.anonymous_id,
        "started": _iso(record.started),
        "ended": _iso(record.ended),
        "closed": record.closed,
        "events": record.events,
        "pages": record.pages,
        "features": record.features,
        "anomaly": anomaly,
        "conversion": _conversion(record.conversion),
    }


def _conversion(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    if stored is None:
        return None
    return {
        "probability": stored.get("probability"),
        "model_version": stored.get("model_version"),
        "converted": bool(stored.get("converted")),
    }


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _time(raw: str | None, name: str) -> Any:
    try:
        return parse_time(raw, name)
    except ItemError as exc:
        raise ApiError(400, "invalid_parameter", exc.message) from exc


def _score(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise ApiError(400, "invalid_parameter", "'min_score' must be a number from 0 to 1")
    return value


# The cursor is the last row's (sort value, session id), base64url JSON: opaque to clients.
def _encode_cursor(record: SessionRecord, order: str) -> str:
    if order == "score":
        value = float((record.anomaly or {}).get("score") or -1.0)
    else:
        value = float(round(record.ended * 1e6))
    raw = json.dumps([value, record.session_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor(raw: str | None) -> tuple[float, str] | None:
    if raw is None:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        value, session_id = decoded
        if not isinstance(session_id, str) or not isinstance(value, int | float):
            raise ValueError
        if isinstance(value, bool) or not math.isfinite(value) or abs(value) > 2**62:
            raise ValueError
        return float(value), session_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_parameter", "'cursor' must come from 'next_cursor'") from exc


def routes() -> list[Route]:
    return [Route("/v1/sessions", list_sessions, methods=["GET"])]


_REASON = {
    "type": "object",
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
}
_SESSION = {
    "type": "object",
    "properties": {
        "session_id": {"type": "string"},
        "user_id": {"type": ["string", "null"]},
        "anonymous_id": {"type": ["string", "null"]},
        "started": {"type": "string", "format": "date-time"},
        "ended": {"type": "string", "format": "date-time"},
        "closed": {"type": "boolean"},
        "events": {"type": "integer"},
        "pages": {"type": "integer"},
        "features": {
            "type": "object",
            "properties": {name: {"type": "number"} for name in FEATURES},
        },
        "anomaly": {
            "type": ["object", "null"],
            "properties": {
                "score": {"type": "number"},
                "label": {"enum": [*LABELS, None]},
                "reasons": {"type": "array", "items": _REASON},
                "model_version": {"type": "integer"},
            },
        },
        "conversion": {
            "type": ["object", "null"],
            "properties": {
                "probability": {"type": "number"},
                "model_version": {"type": "integer"},
            },
        },
    },
}

OPENAPI: dict[str, dict[str, Any]] = {
    "/v1/sessions": {
        "get": admin(
            {
                "summary": "Sessions with features, anomaly score, reasons and model versions",
                "description": (
                    "Live and closed sessions as of the last engine checkpoint. order: "
                    "recent (last activity first, the default) or score (most anomalous "
                    "first). since/until: sessions active in [since, until). A score is "
                    "the session's latest; higher is more anomalous. Paginated: pass "
                    "next_cursor as cursor with the same filters."
                ),
                "tags": ["sessions"],
                "parameters": [
                    param("user_id"),
                    param("anonymous_id"),
                    param("since", schema={"type": "string", "format": "date-time"}),
                    param("until", schema={"type": "string", "format": "date-time"}),
                    param("min_score", schema={"type": "number", "minimum": 0, "maximum": 1}),
                    param("label", schema={"enum": list(LABELS)}),
                    param("order", schema={"enum": list(ORDERS)}),
                    param("limit", schema={"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
                    param("cursor"),
                ],
                "responses": {
                    "200": response(
                        "A page of sessions",
                        {
                            "type": "object",
                            "properties": {
                                "sessions": {"type": "array", "items": _SESSION},
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
