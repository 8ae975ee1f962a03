"""``POST /v1/risk/login``: score a sign-in now, record it, and say what to do."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from asyncio import Future
from datetime import UTC, datetime

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from usertide.capture.errors import ItemError
from usertide.capture.timestamps import corrected_time
from usertide.events import Context, Event, encode_event
from usertide.log import LogUnavailable
from usertide.risk.assess import Assessment
from usertide.risk.detector import RISK_PROPERTY
from usertide.risk.now import assess_now
from usertide.service import Service
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
_ALERT_ID = "_alert_id"
log = logging.getLogger(__name__)


async def risk_login(request: Request) -> Response:
    service: Service = request.app.state.service
    started = time.perf_counter()
    try:
        return await _risk_login(request)
    finally:
        metrics = service.metrics
        metrics.child(metrics.request_latency, "risk.login").observe(time.perf_counter() - started)


async def _risk_login(request: Request) -> Response:
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
    if event.context.geo is None and event.context.ip is None:
        raise ApiError(400, "invalid_field", "'ip' is not an IP address")
    runtime = service.runtime
    if runtime.offset < service.startup_head:  # after a restart: replay first
        await asyncio.to_thread(runtime.wait_for, service.startup_head, 30.0)
    # Scoring and taking into the log's queue run without yielding to the event loop,
    # so attempts are serialised (for one account or network, and for all), each scored
    # once the previous one is in the queue and counted, none waiting for another's fsync.
    result, durable = _score_and_record(service, event)
    try:
        await durable
    except LogUnavailable as exc:
        if result.level != "low":  # the engine will not see it: keep the alert all the same
            detection = service.login_risk.detection(event, event.user_id or "", result)
            await run_in_threadpool(service.alerts.raise_alert, detection)
        raise ApiError(503, "unavailable", f"the sign-in cannot be recorded: {exc}") from exc
    return json_response(
        {
            "score": result.score,
            "level": result.level,
            "action": result.action,
            "reasons": [msgspec.to_builtins(r) for r in result.reasons],
            "alert_id": event.__dict__.get(_ALERT_ID),
            "event_id": event.id,
        }
    )


def _score_and_record(service: Service, event: Event) -> tuple[Assessment, Future[int]]:
    """Score ``event`` from everything the log took before it, and have the log take it.

    It must not await: no other attempt may be scored between its scoring and its
    place in the log (``InFlight`` then counts it for the next). The caller answers
    only once the attempt is durable, so a crash cannot lose an attempt that was
    answered: after a restart the next answer still counts it.
    """
    runtime = service.runtime
    result = runtime.read(
        lambda engine: assess_now(
            engine, service.login_risk, service.network_velocity, event, service.inflight
        )
    )
    event.properties[RISK_PROPERTY] = result.to_builtins()
    try:
        encode_event(event)  # what the log cannot store is refused; encoded once, after
        # its last change (the log reuses these bytes)
    except (UnicodeEncodeError, OverflowError) as exc:
        raise ApiError(400, "invalid_field", "a field holds characters that are not text") from exc
    alert_id = None
    if result.level != "low":
        # Claimed now (id and dedup window); the engine stores the alert when it applies
        # the recorded attempt, batched with the other alerts of its load.
        alert_id = service.alerts.claim(
            service.login_risk.detection(event, event.user_id or "", result)
        )
    event.__dict__[_ALERT_ID] = alert_id  # (beside the event, not in what the log keeps)
    try:
        durable = service.committer.enqueue([event])
    except LogUnavailable as exc:
        if alert_id is not None:
            detection = service.login_risk.detection(event, event.user_id or "", result)
            service.alerts.raise_alert(detection)
        raise ApiError(503, "unavailable", f"the sign-in cannot be recorded: {exc}") from exc
    return result, durable


def routes() -> list[Route]:
    return [Route("/v1/risk/login", risk_login, methods=["POST"])]
