"""The Segment spec: ``/v1/batch`` and the single-call endpoints."""

from __future__ import annotations

from typing import Any, cast

from usertide.capture.base import (
    CaptureRequest,
    ParsedBatch,
    WireProtocol,
    as_dict,
    as_id,
    as_str,
    failed_from,
    item_too_large,
    new_id,
)
from usertide.capture.errors import CaptureError, ItemError
from usertide.capture.segment_typed import parse_typed
from usertide.capture.timestamps import corrected_time, parse_time
from usertide.events import EVENT_TYPES, Context, Event, EventType, FailedEvent, FailureReason

SINGLE_ENDPOINTS = frozenset({"track", "page", "screen", "identify", "alias", "group"})


class SegmentProtocol(WireProtocol):
    name = "segment"

    def parse_bytes(self, body: bytes, request: CaptureRequest) -> ParsedBatch | None:
        if request.endpoint != "batch":
            return None
        return parse_typed(body, request)

    def parse(self, body: Any, request: CaptureRequest) -> ParsedBatch:
        if not isinstance(body, dict):
            raise CaptureError(
                400, "invalid_body", "the request body must be a JSON object", field="body"
            )
        single = request.endpoint in SINGLE_ENDPOINTS
        if single:
            items: list[Any] = [body]
            batch_context: dict[str, Any] = {}
        else:
            raw_items = body.get("batch")
            if not isinstance(raw_items, list):
                raise CaptureError(400, "invalid_batch", "'batch' must be an array", field="batch")
            if not raw_items:
                raise CaptureError(400, "empty_batch", "'batch' is empty", field="batch")
            items = raw_items
            try:
                batch_context = as_dict(body.get("context"), "context")
            except ItemError as exc:
                raise CaptureError(400, "invalid_context", exc.message, field="context") from exc
        write_key = _write_key(body, items, request)
        try:
            batch_sent_at = parse_time(body.get("sentAt"), "sentAt")
        except ItemError as exc:
            raise CaptureError(400, "invalid_timestamp", exc.message, field="sentAt") from exc

        events: list[Event] = []
        failed: list[FailedEvent] = []
        errors: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            try:
                if item_too_large(item, request):
                    raise ItemError(
                        FailureReason.EVENT_TOO_LARGE,
                        f"event is larger than {request.max_event_bytes} bytes",
                    )
                forced = request.endpoint if single else None
                events.append(normalize_item(item, request, batch_context, batch_sent_at, forced))
            except ItemError as exc:
                failed.append(failed_from(exc, item, request, self.name, -1 if single else index))
                errors.append({"index": index, "code": exc.reason.value, "message": exc.message})
        return ParsedBatch(
            events=events, failed=failed, errors=errors, write_key=write_key, single=single
        )


def _write_key(body: dict[str, Any], items: list[Any], request: CaptureRequest) -> str | None:
    keys: set[str] = set()
    if request.header_key:
        keys.add(request.header_key)
    top = body.get("writeKey")
    if isinstance(top, str) and top:
        keys.add(top)
    for item in items:
        if isinstance(item, dict):
            key = item.get("writeKey")
            if isinstance(key, str) and key:
                keys.add(key)
    if len(keys) > 1:
        raise CaptureError(
            401, "conflicting_keys", "the request carries more than one write key", field="writeKey"
        )
    return next(iter(keys), None)


def normalize_item(
    item: Any,
    request: CaptureRequest,
    batch_context: dict[str, Any],
    batch_sent_at: Any,
    forced_type: str | None,
) -> Event:
    if not isinstance(item, dict):
        raise ItemError(FailureReason.SCHEMA_VIOLATION, "each event must be a JSON object")
    raw_kind = forced_type or item.get("type")
    if not isinstance(raw_kind, str) or raw_kind not in EVENT_TYPES:
        raise ItemError(
            FailureReason.UNKNOWN_TYPE,
            f"'type' must be one of {', '.join(sorted(EVENT_TYPES))}",
            "type",
        )
    kind = cast(EventType, raw_kind)
    user_id = as_id(item.get("userId"))
    anonymous_id = as_id(item.get("anonymousId"))
    if item.get("userId") is not None and user_id is None:
        raise ItemError(FailureReason.SCHEMA_VIOLATION, "'userId' must be a string", "userId")
    if not user_id and not anonymous_id:
        raise ItemError(
            FailureReason.MISSING_IDENTITY, "either 'userId' or 'anonymousId' is required", "userId"
        )
    name: str | None = None
    if kind == "track":
        name = as_str(item.get("event"), "event", 256)
        if not name:
            raise ItemError(FailureReason.MISSING_EVENT_NAME, "'event' is required", "event")
    elif kind in ("page", "screen"):
        name = as_str(item.get("name"), "name", 256)
    previous_id = None
    if kind == "alias":
        previous_id = as_id(item.get("previousId"))
        if not previous_id or not user_id:
            raise ItemError(
                FailureReason.SCHEMA_VIOLATION,
                "alias requires 'previousId' and 'userId'",
                "previousId",
            )
    group_id = None
    if kind == "group":
        group_id = as_id(item.get("groupId"))
        if not group_id:
            raise ItemError(FailureReason.SCHEMA_VIOLATION, "'groupId' is required", "groupId")

    properties = as_dict(item.get("properties"), "properties")
    traits = as_dict(item.get("traits"), "traits")
    raw_context = as_dict(item.get("context"), "context")
    if batch_context:
        raw_context = {**batch_context, **raw_context}
    if kind == "identify" and not traits:
        traits = as_dict(raw_context.get("traits"), "context.traits")
    context = build_context(raw_context, properties, request)

    sent_at = parse_time(item.get("sentAt"), "sentAt") or batch_sent_at
    client_time = parse_time(item.get("originalTimestamp"), "originalTimestamp") or parse_time(
        item.get("timestamp"), "timestamp"
    )
    timestamp = corrected_time(client_time, sent_at, request.received_at)
    message_id = as_id(item.get("messageId")) or new_id()
    session_id = as_id(
        raw_context.get("sessionId")
        or properties.get("session_id")
        or properties.get("$session_id")
    )
    return Event(
        id=message_id,
        type=kind,
        name=name,
        user_id=user_id,
        anonymous_id=anonymous_id,
        session_id=session_id,
        timestamp=timestamp,
        sent_at=sent_at,
        received_at=request.received_at,
        context=context,
        properties=properties,
        traits=traits,
        previous_id=previous_id,
        group_id=group_id,
        source="segment",
    )


def build_context(
    raw: dict[str, Any], properties: dict[str, Any], request: CaptureRequest
) -> Context:
    page = as_dict(raw.get("page"), "context.page")
    library = as_dict(raw.get("library"), "context.library")
    url, path, referrer, title = (
        page[k] if page.get(k) is not None else properties.get(k)
        for k in ("url", "path", "referrer", "title")
    )
    return Context(
        ip=as_str(raw.get("ip"), "context.ip", 64) or request.client_ip,
        user_agent=as_str(raw.get("userAgent"), "context.userAgent", 1024) or request.user_agent,
        page_url=as_str(url, "context.page.url"),
        page_path=as_str(path, "context.page.path"),
        page_referrer=as_str(referrer, "context.page.referrer"),
        page_title=as_str(title, "context.page.title", 512),
        locale=as_str(raw.get("locale"), "context.locale", 64),
        timezone=as_str(raw.get("timezone"), "context.timezone", 64),
        library_name=as_str(library.get("name"), "context.library.name", 128),
        library_version=as_str(library.get("version"), "context.library.version", 64),
    )
