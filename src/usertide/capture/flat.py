"""Flat JSON events, as the original design's Flask collector took them at ``/submit``.

``{"user_id": "12345", "event": "click", "timestamp": "2024-10-05T12:00:00Z",
"url": "https://…"}``, one object or an array of them (or ``{"events": [...]}``).
Known fields map onto the event model; any other top-level field becomes a property,
so nothing a page sent is lost. Page views (``page``, ``pageview``, ``page_view``,
``$pageview``) become ``page`` events, everything else a ``track`` event.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

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
from usertide.capture.timestamps import corrected_time, parse_time
from usertide.events import Context, Event, FailedEvent, FailureReason

PAGE_EVENTS = frozenset({"page", "pageview", "page_view", "$pageview"})
_KEY_FIELDS = ("writeKey", "write_key", "api_key")
# Fields with a place in the event model; the rest of an item goes to its properties.
_KNOWN = frozenset(
    {
        *_KEY_FIELDS,
        "user_id",
        "userId",
        "anonymous_id",
        "anonymousId",
        "event",
        "timestamp",
        "time",
        "url",
        "path",
        "referrer",
        "title",
        "ip",
        "user_agent",
        "userAgent",
        "session_id",
        "sessionId",
        "message_id",
        "messageId",
        "properties",
    }
)


class FlatProtocol(WireProtocol):
    name = "flat"

    def parse(self, body: Any, request: CaptureRequest) -> ParsedBatch:
        items = _items(body)
        write_key = _write_key(body, items, request)
        events: list[Event] = []
        failed: list[FailedEvent] = []
        errors: list[dict[str, Any]] = []
        single = isinstance(body, dict) and "events" not in body
        for index, item in enumerate(items):
            try:
                if item_too_large(item, request):
                    raise ItemError(
                        FailureReason.EVENT_TOO_LARGE,
                        f"event is larger than {request.max_event_bytes} bytes",
                    )
                events.append(normalize_flat(item, request))
            except ItemError as exc:
                failed.append(failed_from(exc, item, request, self.name, -1 if single else index))
                errors.append({"index": index, "code": exc.reason.value, "message": exc.message})
        return ParsedBatch(
            events=events, failed=failed, errors=errors, write_key=write_key, single=single
        )


def _items(body: Any) -> list[Any]:
    if isinstance(body, dict):
        batch = body.get("events")
        if batch is None:
            return [body]
        if not isinstance(batch, list):
            raise CaptureError(400, "invalid_batch", "'events' must be an array", field="events")
        items = batch
    elif isinstance(body, list):
        items = body
    else:
        raise CaptureError(
            400, "invalid_body", "the body must be an event object or an array", field="body"
        )
    if not items:
        raise CaptureError(400, "empty_batch", "no events in the request", field="events")
    return items


def _write_key(body: Any, items: list[Any], request: CaptureRequest) -> str | None:
    keys = {request.header_key} if request.header_key else set()
    for holder in (body, *items):
        if isinstance(holder, dict):
            for field in _KEY_FIELDS:
                value = holder.get(field)
                if isinstance(value, str) and value:
                    keys.add(value)
    if len(keys) > 1:
        raise CaptureError(
            401, "conflicting_keys", "the request carries more than one write key", field="writeKey"
        )
    return next(iter(keys), None)


def normalize_flat(item: Any, request: CaptureRequest) -> Event:
    if not isinstance(item, dict):
        raise ItemError(FailureReason.SCHEMA_VIOLATION, "each event must be a JSON object")
    name = as_str(item.get("event"), "event", 256)
    if not name:
        raise ItemError(FailureReason.MISSING_EVENT_NAME, "'event' is required", "event")
    user_id = as_id(item.get("user_id") if "user_id" in item else item.get("userId"))
    anonymous_id = as_id(
        item.get("anonymous_id") if "anonymous_id" in item else item.get("anonymousId")
    )
    if not user_id and not anonymous_id:
        raise ItemError(
            FailureReason.MISSING_IDENTITY,
            "either 'user_id' or 'anonymous_id' is required",
            "user_id",
        )
    properties = dict(as_dict(item.get("properties"), "properties"))
    for field, value in item.items():
        if field not in _KNOWN:
            properties.setdefault(field, value)
    url = as_str(item.get("url"), "url")
    path = as_str(item.get("path"), "path")
    if url and not path:
        path = urlsplit(url).path or "/"
    raw_time = item.get("timestamp") if "timestamp" in item else item.get("time")
    timestamp = corrected_time(parse_time(raw_time, "timestamp"), None, request.received_at)
    page = name.lower() in PAGE_EVENTS
    if page:
        properties.setdefault("event", name)
    context = Context(
        ip=as_str(item.get("ip"), "ip", 64) or request.client_ip,
        user_agent=as_str(item.get("user_agent") or item.get("userAgent"), "user_agent", 1024)
        or request.user_agent,
        page_url=url,
        page_path=path,
        page_referrer=as_str(item.get("referrer"), "referrer"),
        page_title=as_str(item.get("title"), "title", 512),
    )
    return Event(
        id=as_id(item.get("message_id") or item.get("messageId")) or new_id(),
        type="page" if page else "track",
        name=None if page else name,
        user_id=user_id,
        anonymous_id=anonymous_id,
        session_id=as_id(item.get("session_id") or item.get("sessionId")),
        timestamp=timestamp,
        received_at=request.received_at,
        context=context,
        properties=properties,
        source="flat",
    )
