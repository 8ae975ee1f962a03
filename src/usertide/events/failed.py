"""Failed events: input that could not become an :class:`Event`, kept with a typed reason."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import msgspec


class FailureReason(StrEnum):
    MALFORMED_JSON = "malformed_json"
    SCHEMA_VIOLATION = "schema_violation"
    MISSING_EVENT_NAME = "missing_event_name"
    MISSING_IDENTITY = "missing_identity"
    EVENT_TOO_LARGE = "event_too_large"
    INVALID_TIMESTAMP = "invalid_timestamp"
    UNKNOWN_TYPE = "unknown_type"
    UNPARSEABLE_LINE = "unparseable_line"
    INVALID_ENCODING = "invalid_encoding"  # bad gzip, base64 or form packing


class FailedEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    reason: FailureReason
    message: str
    field: str | None = None
    source: str = "api"
    received_at: datetime
    raw: str  # the offending input, truncated to a bounded size
    user_id: str | None = None
    anonymous_id: str | None = None


RAW_LIMIT = 64 * 1024


def clip_raw(raw: str | bytes) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return text if len(text) <= RAW_LIMIT else text[:RAW_LIMIT]
