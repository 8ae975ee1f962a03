"""``POST /v1/risk/login``: score a sign-in now, record it, and say what to do."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from usertide.capture.errors import ItemError
from usertide.capture.timestamps import corrected_time
from usertide.events import Context, Event, encode_event
from usertide.log import LogUnavailable
from usertide.risk.detector import RISK_PROPERTY
from usertide.risk.now import assess_now
from usertide.web.auth import require_admin
from usertide.web.errors import ApiError, json_response


class LoginAttempt(msgspec.Struct, forbid_unknown_fields=True):
    user_id: str
    ip: str
    user_agent: str = ""
    success: bool = True
    timestamp: datetime | None = None
    event_id: str | None = None  # to make retries of the same attempt idempotent


_decoder = msgspec.json.Decoder(LoginAttempt)


async def risk_login(request: Request) -> Response:
    service = require_admin(request)
    body = await request.body()
    try:
        attempt = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise ApiError(400, "invalid_field", f"invalid sign-in: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from exc
    if not attempt.user_id.strip() or len(attempt.user_id) > 512:
        raise ApiError(400, "invalid_field", "'user_id' must be a non-empty string")
    if not attempt.ip.strip() or len(attempt.ip) > 64:
        raise ApiError(400, "invalid_field", "'ip' must be an IP address")
    now = datetime.now(UTC)
    client_time = attempt.timestamp
    if client_time is not None and client_time.tzinfo is None:
        client_time = client_time.replace(tzinfo=UTC)
    try:
        when = corrected_time(client_time, None, now)
    except ItemError as exc:
        raise ApiError(400, "invalid_field", exc.message) from exc
    event = Event(
        id=attempt.event_id or str(uuid.uuid4()),
        type="track",
        name="login",
        user_id=attempt.user_id.strip(),
        timestamp=when,
        received_at=now,
        context=Context(ip=attempt.ip.strip(), user_agent=attempt.user_agent[:1024] or None),
        properties={"success": attempt.success},
        source="risk_api",
    )
    service.enrichers.enrich(event)
    try:
        encode_event(event)  # what the log cannot store is refused before it is scored
    except (UnicodeEncodeError, OverflowError) as exc:
        raise ApiError(400, "invalid_field", "a field holds characters that are not text") from exc
    if event.context.geo is None and event.context.ip is None:
        raise ApiError(400, "invalid_field", "'ip' is not an IP address")
    result = service.runtime.read(
        lambda engine: assess_now(engine, service.login_risk, service.network_velocity, event)
    )
    event.properties[RISK_PROPERTY] = result.to_builtins()
    try:
        await service.committer.append([event])
    except LogUnavailable as exc:
        raise ApiError(503, "unavailable", str(exc)) from exc
    alert_id = None
    if result.level != "low":
        alert = service.alerts.raise_alert(
            service.login_risk.detection(event, event.user_id or "", result)
        )
        alert_id = alert.id if alert is not None else None
    return json_response(
        {
            "score": result.score,
            "level": result.level,
            "action": result.action,
            "reasons": [msgspec.to_builtins(r) for r in result.reasons],
            "alert_id": alert_id,
            "event_id": event.id,
        }
    )


def routes() -> list[Route]:
    return [Route("/v1/risk/login", risk_login, methods=["POST"])]
