"""Ingestion endpoints (Segment and PostHog wire formats). No admin key needed."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from usertide.capture import (
    CaptureError,
    CaptureRequest,
    ParsedBatch,
    PostHogProtocol,
    SegmentProtocol,
    WireProtocol,
)
from usertide.capture.base import drop_unstorable, failed_body, raw_text
from usertide.capture.flat import FlatProtocol
from usertide.events import FailureReason
from usertide.keys import IMPORT_KEY_ID
from usertide.log import LogUnavailable
from usertide.service import Service
from usertide.web.auth import basic_username
from usertide.web.body import BodySpec, decode
from usertide.web.errors import error_response, json_response
from usertide.web.params import is_whole_number

_SEGMENT = SegmentProtocol()
_POSTHOG = PostHogProtocol()
_FLAT = FlatProtocol()


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, headers: dict[str, str], limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared is not None and is_whole_number(declared) and int(declared) > limit:
        raise _BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    receive = request.receive
    while True:  # the ASGI messages themselves: Request.stream() costs more per request
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _headers(request: Request) -> dict[str, str]:
    """The request's headers in one pass (the first of repeated ones, as Starlette's
    ``Headers.get`` gives): several lookups in Starlette's list cost more per request."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in reversed(request.scope["headers"])}


def _client_ip(request: Request, headers: dict[str, str], trust_forwarded: bool) -> str | None:
    if trust_forwarded:
        forwarded = headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip() or None
    return request.client.host if request.client else None


def _reject(service: Service, status: int, code: str, message: str, **kw: Any) -> Response:
    service.metrics.child(service.metrics.requests_rejected, code).inc()
    return error_response(status, code, message, **kw)


async def _ingest(
    request: Request, service: Service, protocol: WireProtocol, endpoint: str
) -> Response:
    settings = service.settings
    received_at = datetime.now(UTC)
    headers = _headers(request)
    content_type = headers.get("content-type") or "application/json"
    limit = settings.max_batch_bytes
    try:
        raw = await _read_body(request, headers, limit)
        # (parsing the query string only when it can say so: it costs a few % per request)
        compression = (
            request.query_params.get("compression")
            if b"compression" in request.scope["query_string"]
            else None
        )
        spec = BodySpec(
            content_type=content_type.split(";")[0].strip().lower(),
            content_encoding=headers.get("content-encoding", "").strip().lower(),
            compression=compression,
        )
        body = decode(raw, spec, limit)
    except _BodyTooLarge:
        return _reject(
            service, 413, "payload_too_large", f"the request body is larger than {limit} bytes"
        )
    except CaptureError as exc:  # the body cannot be decoded
        if exc.reason is not None:
            failed = failed_body(exc.reason, exc.message, raw_text(raw), received_at, protocol.name)
            await _keep_failed(service, [failed])
        return _reject(service, exc.status, exc.code, exc.message)
    if not body.strip():
        return _reject(service, 400, "empty_body", "the request body is empty")
    header_key = basic_username(headers.get("authorization"))
    # ``usertide import`` sending history through this server: its events carry their
    # own address and agent, or none, never the importer's.
    imported = (
        endpoint == "batch"
        and header_key is not None
        and service.keys.check("write", header_key) == IMPORT_KEY_ID
    )
    capture = CaptureRequest(
        endpoint=endpoint,
        received_at=received_at,
        client_ip=None if imported else _client_ip(request, headers, settings.trust_forwarded_for),
        user_agent=None if imported else headers.get("user-agent"),
        header_key=header_key,
        max_event_bytes=settings.max_event_bytes,
        body_bytes=len(body),
    )
    try:
        parsed = protocol.parse_bytes(body, capture)
        if parsed is None:
            try:
                decoded = msgspec.json.decode(body)
            except msgspec.DecodeError as exc:
                failed = failed_body(
                    FailureReason.MALFORMED_JSON,
                    f"malformed JSON: {exc}",
                    body,
                    received_at,
                    protocol.name,
                )
                await _keep_failed(service, [failed])
                return _reject(service, 400, "malformed_json", f"the body is not valid JSON: {exc}")
            parsed = protocol.parse(decoded, capture)
    except CaptureError as exc:
        return _reject(service, exc.status, exc.code, exc.message, headers=exc.headers)

    key_id = service.keys.check("write", parsed.write_key)
    if key_id is None and protocol is _FLAT and not parsed.write_key:
        key_id = _keyless_origin(headers.get("origin"), settings.submit_origins)
    if key_id is None:
        message = "a write key is required" if not parsed.write_key else "unknown write key"
        return _reject(service, 401, "invalid_write_key", message)
    wait = service.limiter.take(key_id)
    if wait > 0:
        retry = str(max(1, int(wait + 0.999)))
        return _reject(
            service,
            429,
            "rate_limited",
            "too many requests for this write key",
            headers={"Retry-After": retry},
        )
    for event in parsed.events:
        event.write_key_id = key_id
        if imported:
            event.source = "import"
        service.enrichers.enrich(event)
    # Encodes each event (memoized for the log), so it must follow every change to it.
    drop_unstorable(parsed, capture, protocol.name)
    metrics = service.metrics
    if parsed.events:
        metrics.child(metrics.events_received, protocol.name).inc(len(parsed.events))
    for failure in parsed.failed:
        metrics.child(metrics.events_failed, failure.reason.value).inc()
    try:
        await service.committer.append(parsed.events, parsed.failed)
    except LogUnavailable as exc:
        return _reject(service, 503, "unavailable", str(exc), headers={"Retry-After": "1"})
    return _answer(service, protocol, parsed)


async def _keep_failed(service: Service, failed: list[Any]) -> None:
    for failure in failed:
        service.metrics.child(service.metrics.events_failed, failure.reason.value).inc()
    # When the log is unavailable the 400 still tells the client; the body is not kept.
    with contextlib.suppress(LogUnavailable):
        await service.committer.append((), failed)


def _keyless_origin(origin: str | None, allowed: str) -> str | None:
    """``/submit`` without a key is accepted from the configured origins only (off by
    default): the pages of the original design posted without one."""
    if not origin or not allowed:
        return None
    origin = origin.strip().rstrip("/").lower()
    for candidate in allowed.split(","):
        if candidate.strip().rstrip("/").lower() == origin:
            return "origin:" + origin[:200]
    return None


_OK: dict[str, dict[str, Any]] = {"posthog": {"status": 1}, "flat": {"status": "success"}}


def _answer(service: Service, protocol: WireProtocol, parsed: ParsedBatch) -> Response:
    accepted, failed = len(parsed.events), len(parsed.failed)
    if failed and not accepted:
        first = parsed.errors[0]
        message = first["message"] if parsed.single else f"no valid events: {first['message']}"
        extra = (
            None
            if parsed.single
            else {"accepted": 0, "failed": failed, "errors": parsed.errors[:100]}
        )
        return _reject(service, 400, first["code"], message, extra=extra)
    body: dict[str, Any] = dict(_OK.get(protocol.name, {"success": True}))
    if not parsed.single or failed:
        body.update(accepted=accepted, failed=failed)
    if failed:
        body["errors"] = parsed.errors[:100]
    return json_response(body)


Handler = Callable[[Request], Awaitable[Response]]


async def ingest(
    request: Request, service: Service, protocol: WireProtocol, endpoint: str
) -> Response:
    """One ingestion request, timed into the request latency histogram."""
    started = time.perf_counter()
    try:
        return await _ingest(request, service, protocol, endpoint)
    finally:
        metrics = service.metrics
        metrics.child(metrics.request_latency, f"{protocol.name}.{endpoint}").observe(
            time.perf_counter() - started
        )


def _handler(protocol: WireProtocol, endpoint: str) -> Handler:
    async def handle(request: Request) -> Response:
        return await ingest(request, request.app.state.service, protocol, endpoint)

    return handle


def paths() -> dict[str, tuple[WireProtocol, str]]:
    """Every ingestion path (all take POST), with its wire protocol and endpoint.

    Segment: the spec's paths and analytics.js's one-letter ones (``/v1/t`` track,
    ``/v1/p`` page, ``/v1/b`` batch, ...); PostHog: its capture paths with and without
    the trailing slash; ``/submit``: flat JSON events of the original design.
    """
    kinds = ("track", "page", "screen", "identify", "alias", "group")
    segment = (
        {"/v1/batch": "batch", "/v1/import": "batch", "/v1/b": "batch"}
        | {f"/v1/{kind}": kind for kind in kinds}
        | {f"/v1/{kind[0]}": kind for kind in kinds}
    )
    posthog = ("/batch", "/capture", "/e", "/i/v0/e")
    return (
        {path: (_SEGMENT, endpoint) for path, endpoint in segment.items()}
        | {path: (_POSTHOG, "capture") for base in posthog for path in (base, base + "/")}
        | {"/submit": (_FLAT, "submit")}
    )


def routes() -> list[Route]:
    return [
        Route(path, _handler(protocol, endpoint), methods=["POST"])
        for path, (protocol, endpoint) in paths().items()
    ]
