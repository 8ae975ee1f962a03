"""JSON lines: one Segment-spec event per line, or a PostHog-style event converted to one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from usertide.importers.base import (
    MALFORMED_JSON,
    SCHEMA_VIOLATION,
    Importer,
    ImportFailure,
    ImportRecord,
    failure,
    parse_timestamp,
    stable_message_id,
)

_decoder = msgspec.json.Decoder()

# PostHog property -> where Segment keeps the same fact. Mapped properties are moved, not
# copied, so the event does not carry each value twice.
_POSTHOG_CONTEXT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "$current_url": ("page", "url"),
    "$pathname": ("page", "path"),
    "$referrer": ("page", "referrer"),
    "$title": ("page", "title"),  # plain "title" stays a property; the collector reads both
    "$ip": ("ip",),
    "$raw_user_agent": ("userAgent",),
    "$user_agent": ("userAgent",),
    "$lib": ("library", "name"),
    "$lib_version": ("library", "version"),
}
_DISTINCT_ID_KEYS = ("distinct_id", "$distinct_id")
# The event names the collector's PostHog endpoint also reads as Segment types. Alias and
# group events need fields Segment keeps elsewhere, so they stay plain track events here.
_TYPE_BY_POSTHOG_EVENT = {"$pageview": "page", "$screen": "screen", "$identify": "identify"}
# posthog-js reports a visit without referrer as this literal instead of leaving it out.
_POSTHOG_NO_REFERRER = "$direct"


class SchemaError(ValueError):
    """The line is valid JSON but cannot be read as an event."""


class JsonLinesImporter(Importer):
    format = "jsonl"

    def records(self) -> Iterator[ImportRecord | ImportFailure]:
        for number, raw in self._lines():
            if not raw.strip():
                continue
            try:
                document = _decoder.decode(raw)
            except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
                # msgspec reports invalid UTF-8 inside strings and absurdly deep nesting with
                # these builtin errors rather than DecodeError.
                yield failure(number, raw, MALFORMED_JSON, str(exc))
                continue
            try:
                payload = to_segment(document)
            except SchemaError as exc:
                yield failure(number, raw, SCHEMA_VIOLATION, str(exc))
                continue
            if not payload.get("messageId"):
                payload["messageId"] = stable_message_id(raw.decode("utf-8", "replace"))
            yield ImportRecord(number, payload)


def to_segment(document: object) -> dict[str, Any]:
    """The Segment-spec dict for one decoded line (unchanged if it already is one)."""
    if not isinstance(document, dict):
        raise SchemaError(f"expected a JSON object, got {type(document).__name__}")
    if _is_posthog(document):
        return from_posthog(document)
    return document


def _is_posthog(document: dict[str, Any]) -> bool:
    if "type" in document:
        return False
    properties = document.get("properties")
    holders = (document, properties if isinstance(properties, dict) else {})
    return any(key in holder for holder in holders for key in _DISTINCT_ID_KEYS)


def from_posthog(document: dict[str, Any]) -> dict[str, Any]:
    """Convert ``{"event", "distinct_id", "properties", "timestamp"}`` to Segment's shape.

    Follows the collector's PostHog endpoint (usertide.capture.posthog) so an exported event
    reads the same whether it was captured live or imported from a file.
    """
    properties = document.get("properties") or {}
    if not isinstance(properties, dict):
        raise SchemaError("properties must be an object")
    properties = dict(properties)
    event = document.get("event")
    if not isinstance(event, str) or not event:
        raise SchemaError("event must be a non-empty string")
    distinct_id = _distinct_id(document, properties)

    event_type = _TYPE_BY_POSTHOG_EVENT.get(event, "track")
    payload: dict[str, Any] = {"type": event_type}
    if event_type == "track":
        payload["event"] = event
    elif event_type == "screen" and isinstance(properties.get("$screen_name"), str):
        payload["name"] = properties["$screen_name"]
    payload.update(_identity(distinct_id, properties, event_type))
    if isinstance(document.get("uuid"), str):
        payload["messageId"] = document["uuid"]
    if document.get("timestamp") is not None:
        try:
            payload["timestamp"] = parse_timestamp(document["timestamp"])
        except ValueError as exc:
            raise SchemaError(str(exc)) from None
    if event_type == "identify":
        # $set holds the person properties identify() was called with.
        person_properties = document.get("$set", properties.pop("$set", None))
        if isinstance(person_properties, dict):
            payload["traits"] = person_properties

    context: dict[str, Any] = {}
    for name, target in _POSTHOG_CONTEXT_PROPERTIES.items():
        if name not in properties:
            continue
        value = properties.pop(name)
        if value is None or value == "" or value == _POSTHOG_NO_REFERRER:
            continue
        _set_nested(context, target, value)
    if context:
        payload["context"] = context
    payload["properties"] = properties
    return payload


def _distinct_id(document: dict[str, Any], properties: dict[str, Any]) -> str:
    """The capture API accepts the id at top level or in properties, with or without '$'."""
    candidates = [document.get(key) for key in _DISTINCT_ID_KEYS]
    candidates += [properties.pop(key, None) for key in _DISTINCT_ID_KEYS]
    for value in candidates:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise SchemaError("distinct_id must be a non-empty string or integer")


def _identity(distinct_id: str, properties: dict[str, Any], event_type: str) -> dict[str, str]:
    """Split PostHog's single distinct_id into Segment's userId / anonymousId.

    posthog-js sends the device id as distinct_id, with ``$is_identified: false``, until
    identify() is called; afterwards distinct_id is the user's id and ``$device_id`` (or
    ``$anon_distinct_id`` on ``$identify``) still names the browser.
    """
    device_id = properties.get("$anon_distinct_id") or properties.get("$device_id")
    anonymous = event_type != "identify" and (
        properties.get("$is_identified") is False
        or properties.get("$process_person_profile") is False
        or distinct_id == device_id
    )
    if anonymous:
        return {"anonymousId": distinct_id}
    identity = {"userId": distinct_id}
    if isinstance(device_id, str) and device_id and device_id != distinct_id:
        identity["anonymousId"] = device_id
    return identity


def _set_nested(target: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    *parents, leaf = path
    for key in parents:
        target = target.setdefault(key, {})
    # First mapping wins: $raw_user_agent (what posthog-js sends) beats $user_agent.
    target.setdefault(leaf, value)
