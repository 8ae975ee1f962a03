"""What the log's records hold: an event, or input kept as a failed event."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from usertide.events import Event, FailedEvent
from usertide.events.model import decode_event, encode_event
from usertide.log.segments import Record

EVENT = 1
FAILED = 2

_failed_encoder = msgspec.msgpack.Encoder()
_failed_decoder = msgspec.msgpack.Decoder(FailedEvent)


def to_records(events: Sequence[Event], failed: Sequence[FailedEvent]) -> list[tuple[int, bytes]]:
    """``(kind, payload)`` pairs, events first (their offsets follow the same order)."""
    items = [(EVENT, encode_event(e)) for e in events]
    items.extend((FAILED, _failed_encoder.encode(f)) for f in failed)
    return items


def from_records(records: Iterable[Record]) -> tuple[list[Event], list[FailedEvent]]:
    events: list[Event] = []
    failed: list[FailedEvent] = []
    for record in records:
        if record.kind == EVENT:
            event = decode_event(record.payload)
            event.offset = record.offset
            events.append(event)
        elif record.kind == FAILED:
            failed.append(_failed_decoder.decode(record.payload))
    return events, failed
