"""The one normalized event that every capture path produces and every consumer reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

EventType = Literal["track", "page", "screen", "identify", "alias", "group"]
EVENT_TYPES: frozenset[str] = frozenset({"track", "page", "screen", "identify", "alias", "group"})


class Geo(msgspec.Struct, kw_only=True, omit_defaults=True):
    country: str | None = None  # ISO 3166-1 alpha-2
    country_name: str | None = None
    region: str | None = None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    accuracy_km: float | None = None
    asn: int | None = None
    as_org: str | None = None


class Device(msgspec.Struct, kw_only=True, omit_defaults=True):
    browser: str | None = None
    browser_version: str | None = None
    os: str | None = None
    os_version: str | None = None
    device_type: str | None = None  # desktop | mobile | tablet | bot | other
    device_brand: str | None = None
    device_model: str | None = None
    is_bot: bool = False
    is_headless: bool = False
    is_automation: bool = False


class Context(msgspec.Struct, kw_only=True, omit_defaults=True):
    ip: str | None = None
    user_agent: str | None = None
    page_url: str | None = None
    page_path: str | None = None
    page_referrer: str | None = None
    page_title: str | None = None
    locale: str | None = None
    timezone: str | None = None
    library_name: str | None = None
    library_version: str | None = None
    geo: Geo | None = None
    device: Device | None = None


class Event(msgspec.Struct, kw_only=True, omit_defaults=True, dict=True):
    """A captured event after parsing, clock correction and enrichment.

    ``timestamp`` is the corrected event time; ``offset`` is assigned by the event log
    when the event is durably appended and is ``None`` before that. (``dict=True`` lets
    :func:`encode_event` memoize the encoded form outside the serialized fields.)
    """

    id: str
    type: EventType
    name: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    session_id: str | None = None
    timestamp: datetime
    sent_at: datetime | None = None
    received_at: datetime
    context: Context = msgspec.field(default_factory=Context)
    properties: dict[str, Any] = msgspec.field(default_factory=dict)
    traits: dict[str, Any] = msgspec.field(default_factory=dict)
    previous_id: str | None = None
    group_id: str | None = None
    source: str = "api"
    write_key_id: str | None = None
    offset: int | None = None

    @property
    def distinct_id(self) -> str:
        """The key the engine routes on before identity resolution."""
        if self.user_id:
            return self.user_id
        return f"anon:{self.anonymous_id}"


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Event)
_json_encoder = msgspec.json.Encoder()


def encode_event(event: Event) -> bytes:
    """The log's binary form of an event, computed once per event.

    Capture encodes each event to check it can be stored; the log reuses those bytes.
    The offset is not part of them (it is stored beside the body), so the memo stays
    valid when the log assigns one.
    """
    memo: bytes | None = event.__dict__.get("_encoded")
    if memo is None:
        offset, event.offset = event.offset, None
        try:
            memo = _encoder.encode(event)
        finally:
            event.offset = offset
        event.__dict__["_encoded"] = memo
    return memo


def decode_event(data: bytes) -> Event:
    return _decoder.decode(data)


def event_to_json(event: Event) -> bytes:
    return _json_encoder.encode(event)


# Fields every event shows in the API, null when absent, so clients see one shape.
_API_FIELDS = dict.fromkeys(
    (
        "name",
        "user_id",
        "anonymous_id",
        "session_id",
        "sent_at",
        "previous_id",
        "group_id",
        "offset",
    )
)


def event_to_builtins(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {**_API_FIELDS, **msgspec.to_builtins(event)}
    return out
