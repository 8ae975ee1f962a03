"""``POST /v1/risk/login``: score a sign-in now, record it, and say what to do."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from usertide.capture.errors import ItemError
from usertide.capture.timestamps import corrected_time
from usertide.engine.base import Detection
from usertide.events import Context, Event, encode_event
from usertide.log import LogUnavailable
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
    result = service.runtime.read(
        lambda engine: assess_now(engine, service.login_risk, service.network_velocity, event)
    )
    event.properties[RISK_PROPERTY] = result.to_builtins()
    try:
        encode_event(event)  # what the log cannot store is refused; encoded once, after
        # its last change (the log reuses these bytes)
    except (UnicodeEncodeError, OverflowError) as exc:
        raise ApiError(400, "invalid_field", "a field holds characters that are not text") from exc
    # The decision is what the sign-in waits for: recording the attempt and storing the
    # alert happen after the answer (group-committed with other traffic; the alert by
    # the engine, batched with the alerts of its load). A crash in between can lose the
    # record of an answered attempt, never an acknowledged ingestion event.
    alert_id = None
    detection = None
    if result.level != "low":
        detection = service.login_risk.detection(event, event.user_id or "", result)
        alert_id = service.alerts.claim(detection)
    _background(service, _record(service, event, detection))
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


async def _record(service: Service, event: Event, detection: Detection | None) -> None:
    """Record the attempt; the engine then raises its alert (the event carries the
    answered assessment), stored in one commit with the other alerts of its load."""
    try:
        await service.committer.append([event])
    except LogUnavailable:
        log.warning("a scored sign-in could not be recorded (the log is unavailable)")
        if detection is not None:  # the engine will not see it: raise the alert here
            await run_in_threadpool(service.alerts.raise_alert, detection)


def _background(service: Service, work: Coroutine[Any, Any, None]) -> None:
    tasks = service.background
    task = asyncio.ensure_future(work)
    tasks.add(task)
    task.add_done_callback(_finished(tasks))


def _finished(tasks: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("recording a scored sign-in failed", exc_info=task.exception())

    return done


def routes() -> list[Route]:
    return [Route("/v1/risk/login", risk_login, methods=["POST"])]
