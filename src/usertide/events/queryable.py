"""The queryable form of an event: its properties, traits and context as JSON text.

Stores keep these beside the event's binary body so that analytics can filter and
group on any property or context field in SQL (``json_extract_string(properties,
'$.category')``) instead of decoding events in Python. Empty objects are stored as
NULL: most events have no traits, and NULL costs nothing. The context leaves out the
raw IP address and user agent: the address is personal data (the body keeps it under
the IP policy), the user agent is parsed into ``context.device``, and the two long
strings were half of the column's bytes, which every load pays for.
"""

from __future__ import annotations

import msgspec

from usertide.events.model import Event

_encoder = msgspec.json.Encoder()


def json_columns(event: Event) -> tuple[bytes | None, bytes | None, bytes | None]:
    """``(properties, traits, context)`` as UTF-8 JSON, ``None`` where empty."""
    properties = _encoder.encode(event.properties) if event.properties else None
    traits = _encoder.encode(event.traits) if event.traits else None
    ctx = event.context
    if ctx.ip is not None or ctx.user_agent is not None:
        ctx = msgspec.structs.replace(ctx, ip=None, user_agent=None)
    context = _encoder.encode(ctx)
    return properties, traits, (context if context != b"{}" else None)
