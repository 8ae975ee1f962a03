"""The event model shared by capture, log, engine and store."""

from usertide.events.failed import RAW_LIMIT, FailedEvent, FailureReason, clip_raw
from usertide.events.model import (
    EVENT_TYPES,
    Context,
    Device,
    Event,
    EventType,
    Geo,
    decode_event,
    encode_event,
    event_to_builtins,
    event_to_json,
)

__all__ = [
    "EVENT_TYPES",
    "RAW_LIMIT",
    "Context",
    "Device",
    "Event",
    "EventType",
    "FailedEvent",
    "FailureReason",
    "Geo",
    "clip_raw",
    "decode_event",
    "encode_event",
    "event_to_builtins",
    "event_to_json",
]
