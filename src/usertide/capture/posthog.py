"""PostHog's capture API: ``/batch``, ``/capture``, ``/e``, ``/i/v0/e``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

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
from usertide.events import Context, Event, EventType, FailedEvent, FailureReason

_TYPE_BY_EVENT: dict[str, EventType] = {
    "$pageview": "page",
    "$screen": "screen",
    "$identify": "identify",
    "$create_alias": "alias",
    "$groupidentify": "group",
}
_KEY_FIELDS = ("api_key", "token")


class PostHogProtocol(WireProtocol):
    name = "posthog"

    def parse(self, body: Any, request: CaptureRequest) -> ParsedBatch:
        items, envelope = _items(body)
        write_key = _write_key(envelope, items, request)
        try:
            sent_at = parse_time(envelope.get("sent_at") or envelope.get("sentAt"), "sent_at")
        except ItemError as exc:
            raise CaptureError(400, "invalid_timestamp", exc.message, field="sent_at") from exc
        single = len(items) == 1 and "batch" not in envelope and not isinstance(body, list)
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
                events.append(normalize_event(item, request, sent_at))
            except ItemError as exc:
                failed.append(failed_from(exc, item, request, self.name, index))
                errors.append({"index": index, "code": exc.reason.value, "message": exc.message})
        return ParsedBatch(
            events=events, failed=failed, errors=errors, write_key=write_key, single=single
        )


def _items(body: Any) -> tuple[list[Any], dict[str, Any]]:
    if isinstance(body, list):
        items, envelope = body, {}
    elif isinstance(body, dict):
        batch = body.get("batch")
        if batch is not None:
            if not isinstance(batch, list):
                raise CaptureError(400, "invalid_batch", "'batch' must be an array", field="batch")
            items, envelope = batch, body
        else:
            items, envelope = [body], body
    else:
        raise CaptureError(
            400, "invalid_body", "the body must be an event, an array or a batch", field="body"
        )
    if not items:
        raise CaptureError(400, "empty_batch", "no events in the request", field="batch")
    return items, envelope


def _write_key(envelope: dict[str, Any], items: list[Any], request: CaptureRequest) -> str | None:
    keys: set[str] = set()
    if request.header_key:
        keys.add(request.header_key)
    sources: list[Any] = [envelope, *items]
    for source in sources:
        if not isinstance(source, dict):
            continue
        props = source.get("properties")
        for holder in (source, props if isinstance(props, dict) else {}):
            for field in _KEY_FIELDS:
                value = holder.get(field)
                if isinstance(value, str) and value:
                    keys.add(value)
    if len(keys) > 1:
        raise CaptureError(
            401,
            "conflicting_keys",
            "the request carries more than one project key",
            field="api_key",
        )
    return next(iter(keys), None)


def normalize_event(item: Any, request: CaptureRequest, sent_at: Any) -> Event:
    if not isinstance(item, dict):
        raise ItemError(FailureReason.SCHEMA_VIOLATION, "each event must be a JSON object")
    name = as_str(item.get("event"), "event", 256)
    if not name:
        raise ItemError(FailureReason.MISSING_EVENT_NAME, "'event' is required", "event")
    properties = dict(as_dict(item.get("properties"), "properties"))
    distinct_id = as_id(
        item.get("distinct_id")
        or item.get("$distinct_id")
        or properties.get("distinct_id")
        or properties.get("$distinct_id")
    )
    if not distinct_id:
        raise ItemError(FailureReason.MISSING_IDENTITY, "'distinct_id' is required", "distinct_id")
    for field in (*_KEY_FIELDS, "distinct_id", "$distinct_id"):
        properties.pop(field, None)

    kind = _TYPE_BY_EVENT.get(name, "track")
    user_id, anonymous_id = _identity(distinct_id, properties, kind)
    traits = dict(
        as_dict(item.get("$set"), "$set") or as_dict(properties.pop("$set", None), "$set")
    )
    set_once = as_dict(item.get("$set_once"), "$set_once") or as_dict(
        properties.pop("$set_once", None), "$set_once"
    )
    if set_once:
        properties["$set_once"] = set_once
    previous_id = None
    if kind == "alias":
        alias = as_id(properties.get("alias"))
        if not alias:
            raise ItemError(
                FailureReason.SCHEMA_VIOLATION, "'$create_alias' needs 'alias'", "alias"
            )
        previous_id, user_id = alias, distinct_id
    group_id = as_id(properties.get("$group_key")) if kind == "group" else None
    if kind == "group" and not group_id:
        raise ItemError(FailureReason.SCHEMA_VIOLATION, "'$group_key' is required", "$group_key")

    client_time = parse_time(item.get("timestamp"), "timestamp")
    offset_ms = item.get("offset")
    if (
        client_time is None
        and isinstance(offset_ms, int | float)
        and not isinstance(offset_ms, bool)
    ):
        timestamp = request.received_at - timedelta(milliseconds=max(0.0, float(offset_ms)))
    else:
        timestamp = corrected_time(client_time, sent_at, request.received_at)
    context = Context(
        ip=as_str(properties.get("$ip"), "properties.$ip", 64) or request.client_ip,
        user_agent=as_str(
            properties.get("$raw_user_agent") or properties.get("$user_agent"),
            "properties.$raw_user_agent",
            1024,
        )
        or request.user_agent,
        page_url=as_str(properties.get("$current_url"), "properties.$current_url"),
        page_path=as_str(properties.get("$pathname"), "properties.$pathname"),
        page_referrer=as_str(properties.get("$referrer"), "properties.$referrer"),
        page_title=as_str(properties.get("title") or properties.get("$title"), "title", 512),
        locale=as_str(properties.get("$locale"), "properties.$locale", 64),
        timezone=as_str(properties.get("$timezone"), "properties.$timezone", 64),
        library_name=as_str(properties.get("$lib"), "properties.$lib", 128),
        library_version=as_str(properties.get("$lib_version"), "properties.$lib_version", 64),
    )
    return Event(
        id=as_id(item.get("uuid")) or new_id(),
        type=kind,
        name=None if kind in ("page", "screen") else name,
        user_id=user_id,
        anonymous_id=anonymous_id,
        session_id=as_id(properties.get("$session_id")),
        timestamp=timestamp,
        sent_at=sent_at,
        received_at=request.received_at,
        context=context,
        properties=properties,
        traits=traits,
        previous_id=previous_id,
        group_id=group_id,
        source="posthog",
    )


def _identity(
    distinct_id: str, properties: dict[str, Any], kind: str
) -> tuple[str | None, str | None]:
    """PostHog has one ``distinct_id``; split it into Segment's user and anonymous ids.

    posthog-js marks anonymous visitors with ``$is_identified: false`` (or
    ``$process_person_profile: false``, or a ``distinct_id`` equal to its
    ``$device_id``); ``$identify`` names the anonymous id it merges
    in ``$anon_distinct_id``. Server SDKs send identified users' ids.
    """
    anonymous = properties.get("$anon_distinct_id") or properties.get("$device_id")
    anon_id = as_id(anonymous)
    if kind != "identify" and (
        properties.get("$is_identified") is False
        or properties.get("$process_person_profile") is False
        or distinct_id == as_id(properties.get("$device_id"))
    ):
        return None, distinct_id
    return distinct_id, anon_id if anon_id != distinct_id else None
