"""The capture contract: a wire protocol turns a decoded request body into events.

Each protocol (Segment, PostHog) implements :class:`WireProtocol`; the HTTP layer does
transport concerns (size limits, gzip, JSON decoding, auth, rate limits) and hands the
decoded body here. Parsing is pure: no I/O, no clock other than ``received_at``.
"""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

import msgspec

from usertide.capture.errors import ItemError
from usertide.events import (
    RAW_LIMIT,
    Event,
    FailedEvent,
    FailureReason,
    clip_raw,
    encode_event,
    event_to_builtins,
)


class CaptureRequest(msgspec.Struct, kw_only=True, frozen=True):
    """What the transport knows about the request, beside its body."""

    endpoint: str  # e.g. "batch", "track", "page", "capture"
    received_at: datetime
    client_ip: str | None = None
    user_agent: str | None = None
    header_key: str | None = None  # write key from HTTP Basic auth
    max_event_bytes: int = 32 * 1024
    body_bytes: int = 0


class ParsedBatch(msgspec.Struct, kw_only=True):
    events: list[Event]
    failed: list[FailedEvent]
    errors: list[dict[str, Any]]  # per failed item: index, code, message
    write_key: str | None
    single: bool  # the request carried one event, not a batch


class WireProtocol(ABC):
    name: str

    def parse_bytes(self, body: bytes, request: CaptureRequest) -> ParsedBatch | None:
        """An optional fast path straight from the raw body; ``None`` means "use
        :meth:`parse` on the decoded body". It must give the same result as ``parse``."""
        return None

    @abstractmethod
    def parse(self, body: Any, request: CaptureRequest) -> ParsedBatch:
        """Normalize a decoded body. Raises CaptureError for request-level problems
        (no events, conflicting keys); item problems become failed events."""


def failed_from(
    error: ItemError, item: object, request: CaptureRequest, source: str, index: int
) -> FailedEvent:
    raw = msgspec.json.encode(item) if not isinstance(item, str | bytes) else item
    user_id = anonymous_id = None
    if isinstance(item, dict):
        user_id = as_id(item.get("userId") or item.get("distinct_id"))
        anonymous_id = as_id(item.get("anonymousId"))
    return FailedEvent(
        id=new_id(),
        reason=error.reason,
        message=f"item {index}: {error.message}" if index >= 0 else error.message,
        field=error.field,
        source=source,
        received_at=request.received_at,
        raw=clip_raw(raw),
        user_id=user_id,
        anonymous_id=anonymous_id,
    )


def failed_body(
    reason: FailureReason, message: str, raw: bytes | str, received_at: datetime, source: str
) -> FailedEvent:
    return FailedEvent(
        id=new_id(),
        reason=reason,
        message=message,
        source=source,
        received_at=received_at,
        raw=clip_raw(raw),
    )


def raw_text(raw: bytes) -> str:
    """A body as text for the failed-events store: UTF-8 as it is, anything else (a
    gzip stream, a binary) as ``base64:`` and its base64, so nothing is mangled."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(raw[: RAW_LIMIT * 3 // 4]).decode("ascii")


def new_id() -> str:
    import uuid

    return str(uuid.uuid4())


def as_id(value: object) -> str | None:
    """Ids may arrive as strings or numbers; anything else is not an id."""
    if isinstance(value, str):
        value = value.strip()
        return value[:512] or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def as_str(value: object, field: str, limit: int = 2048) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ItemError(FailureReason.SCHEMA_VIOLATION, f"'{field}' must be a string", field)


def as_dict(value: object, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise ItemError(FailureReason.SCHEMA_VIOLATION, f"'{field}' must be an object", field)


def item_too_large(item: object, request: CaptureRequest) -> bool:
    # Only a body larger than the per-event limit can hold an oversized event, so the
    # re-encoding cost is paid only for big batches.
    if request.body_bytes <= request.max_event_bytes:
        return False
    return len(msgspec.json.encode(item)) > request.max_event_bytes


def drop_unstorable(parsed: ParsedBatch, request: CaptureRequest, source: str) -> None:
    """Move events the log cannot encode (integers beyond 64 bits) to failed events.

    JSON allows any integer; the log's binary format does not. Found here, one such
    event fails alone instead of failing the group commit it would have joined.
    """
    kept: list[Event] = []
    for index, event in enumerate(parsed.events):
        try:
            encode_event(event)
        except (OverflowError, TypeError, ValueError):
            error = ItemError(
                FailureReason.SCHEMA_VIOLATION,
                "a number is outside the 64-bit integer range",
                "properties",
            )
            parsed.failed.append(failed_from(error, event_to_builtins(event), request, source, -1))
            parsed.errors.append(
                {"index": index, "code": error.reason.value, "message": error.message}
            )
            continue
        kept.append(event)
    parsed.events = kept
