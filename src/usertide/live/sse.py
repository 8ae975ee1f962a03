"""Server-sent-events framing: ``event:``, ``id:``, one line of JSON ``data:``.

msgspec's JSON escapes every control character, so the data never holds a newline
that would end the field early.
"""

from __future__ import annotations

from typing import Any

import msgspec

_json = msgspec.json.Encoder()

PING = b": ping\n\n"  # a comment: proxies see traffic, EventSource ignores it
RETRY = b"retry: 3000\n\n"  # how soon EventSource reconnects after the stream ends


def message(kind: str, data: Any, id: int | None = None) -> bytes:
    head = b"event: " + kind.encode() + b"\n"
    if id is not None:
        head += b"id: %d\n" % id
    return head + b"data: " + _json.encode(data) + b"\n\n"
