"""The fast path for Segment batches: decode the body straight into typed structs.

Well-formed batches from real SDKs (string ids, RFC 3339 times, object properties) are
decoded by msgspec into the structs below and turned into events without the generic
per-field checks. Anything else (numbers as ids, unix times, batch-level context, an
invalid item) makes :func:`parse_typed` return ``None`` and the request takes the
generic path in ``segment.py``, which handles every case and keeps failed items. The
two paths produce identical events (``tests/capture/test_segment_typed.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from usertide.capture.base import CaptureRequest, ParsedBatch, new_id
from usertide.capture.errors import CaptureError, ItemError
from usertide.capture.timestamps import corrected_time
from usertide.events import EVENT_TYPES, Context, Event


class _Page(msgspec.Struct):
    url: str | None = None
    path: str | None = None
    referrer: str | None = None
    title: str | None = None


class _Library(msgspec.Struct):
    name: str | None = None
    version: str | None = None


class _Context(msgspec.Struct):
    ip: str | None = None
    userAgent: str | None = None  # the wire names are camelCase
    page: _Page | None = None
    library: _Library | None = None
    locale: str | None = None
    timezone: str | None = None
    sessionId: str | None = None
    traits: dict[str, Any] | None = None


class _Item(msgspec.Struct):
    type: str
    event: str | None = None
    name: str | None = None
    userId: str | None = None
    anonymousId: str | None = None
    messageId: str | None = None
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: _Context | None = None
    previousId: str | None = None
    groupId: str | None = None
    writeKey: str | None = None


class _Batch(msgspec.Struct):
    batch: list[_Item]
    sentAt: datetime | None = None
    writeKey: str | None = None
    context: dict[str, Any] | None = None


class _RawBatch(msgspec.Struct):
    batch: list[msgspec.Raw]
    sentAt: datetime | None = None
    writeKey: str | None = None
    context: dict[str, Any] | None = None


_decoder = msgspec.json.Decoder(_Batch)
_raw_decoder = msgspec.json.Decoder(_RawBatch)
_item_decoder = msgspec.json.Decoder(_Item)
_EMPTY_CONTEXT = _Context()


class _Fallback(Exception):
    pass


def parse_typed(body: bytes, request: CaptureRequest) -> ParsedBatch | None:
    """Events from a well-formed ``/v1/batch`` body, or ``None`` to use the generic path."""
    try:
        decoded = _decode(body, request.max_event_bytes)
    except (msgspec.DecodeError, msgspec.ValidationError, _Fallback):
        return None
    if decoded.context or not decoded.batch:
        return None
    keys = {k for k in (request.header_key, decoded.writeKey) if k}
    keys.update(item.writeKey for item in decoded.batch if item.writeKey)
    if len(keys) > 1:
        raise CaptureError(
            401, "conflicting_keys", "the request carries more than one write key", field="writeKey"
        )
    sent_at = _utc(decoded.sentAt)
    try:
        events = [_event(item, request, sent_at) for item in decoded.batch]
    except (_Fallback, ItemError):
        return None
    return ParsedBatch(
        events=events, failed=[], errors=[], write_key=next(iter(keys), None), single=False
    )


def _decode(body: bytes, max_event_bytes: int) -> _Batch:
    if len(body) <= max_event_bytes:
        return _decoder.decode(body)
    # A body over the per-event limit may hold an oversized event: measure each item's
    # raw span (msgspec.Raw costs no parsing) before decoding it.
    raw = _raw_decoder.decode(body)
    if any(len(item) > max_event_bytes for item in raw.batch):
        raise _Fallback
    items = [_item_decoder.decode(item) for item in raw.batch]
    return _Batch(batch=items, sentAt=raw.sentAt, writeKey=raw.writeKey, context=raw.context)


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _clip(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    return value[:limit]


def _id(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value[:512] or None


def _event(item: _Item, request: CaptureRequest, batch_sent_at: datetime | None) -> Event:
    kind = item.type
    if kind not in EVENT_TYPES:
        raise _Fallback
    user_id = _id(item.userId)
    anonymous_id = _id(item.anonymousId)
    if (item.userId is not None and user_id is None) or (not user_id and not anonymous_id):
        raise _Fallback
    name: str | None = None
    if kind == "track":
        name = _clip(item.event, 256)
        if not name:
            raise _Fallback
    elif kind in ("page", "screen"):
        name = _clip(item.name, 256)
    previous_id = group_id = None
    if kind == "alias":
        previous_id = _id(item.previousId)
        if not previous_id or not user_id:
            raise _Fallback
    elif kind == "group":
        group_id = _id(item.groupId)
        if not group_id:
            raise _Fallback
    properties = item.properties if item.properties is not None else {}
    traits = item.traits if item.traits is not None else {}
    ctx = item.context or _EMPTY_CONTEXT
    if kind == "identify" and not traits and ctx.traits:
        traits = ctx.traits
    page = ctx.page
    library = ctx.library
    url = page.url if page is not None and page.url is not None else properties.get("url")
    path = page.path if page is not None and page.path is not None else properties.get("path")
    referrer = (
        page.referrer
        if page is not None and page.referrer is not None
        else properties.get("referrer")
    )
    title = page.title if page is not None and page.title is not None else properties.get("title")
    for value in (url, path, referrer, title):
        if value is not None and not isinstance(value, str):
            raise _Fallback  # numbers or objects in properties: the generic path decides
    context = Context(
        ip=_clip(ctx.ip, 64) or request.client_ip,
        user_agent=_clip(ctx.userAgent, 1024) or request.user_agent,
        page_url=_clip(url, 2048),
        page_path=_clip(path, 2048),
        page_referrer=_clip(referrer, 2048),
        page_title=_clip(title, 512),
        locale=_clip(ctx.locale, 64),
        timezone=_clip(ctx.timezone, 64),
        library_name=_clip(library.name, 128) if library is not None else None,
        library_version=_clip(library.version, 64) if library is not None else None,
    )
    sent_at = _utc(item.sentAt) or batch_sent_at
    client_time = _utc(item.originalTimestamp) or _utc(item.timestamp)
    session_raw = ctx.sessionId or properties.get("session_id") or properties.get("$session_id")
    if session_raw is not None and not isinstance(session_raw, str):
        raise _Fallback
    return Event(
        id=_id(item.messageId) or new_id(),
        type=kind,  # type: ignore[arg-type]
        name=name,
        user_id=user_id,
        anonymous_id=anonymous_id,
        session_id=_id(session_raw),
        timestamp=corrected_time(client_time, sent_at, request.received_at),
        sent_at=sent_at,
        received_at=request.received_at,
        context=context,
        properties=properties,
        traits=traits,
        previous_id=previous_id,
        group_id=group_id,
        source="segment",
    )
