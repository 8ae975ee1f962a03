"""An engine output and a stored record: a user's event about an item."""

from __future__ import annotations

from typing import Any

import msgspec


class Interaction(msgspec.Struct, kw_only=True, frozen=True, tag="interaction"):
    """A user's event about an item (a product viewed, put in the cart, bought; an
    article read): what the global recommenders learn from, in log order. ``kind`` is
    ``view``, ``click``, ``cart``, ``wishlist`` or ``purchase``; ``properties`` are the
    item's properties the event carried (category, name, price...)."""

    user_key: str
    session_id: str
    item_id: str
    kind: str
    timestamp: float
    event_id: str
    offset: int | None = None
    properties: dict[str, Any] = msgspec.field(default_factory=dict)
