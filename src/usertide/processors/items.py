"""Which item an event is about, and each user's items: the engine side of recommendations.

An event is about an item when one of the configured properties names it
(``product_id``, ``item_id``, ``sku`` by default: Segment's e-commerce spec and most
shops), for an order when its ``products`` list does (Segment's ``Order Completed``), or,
on a content site, when its page path does (``from_path``). The ``ItemInteractions``
processor keeps, per user, the current session's items in order (what the recommenders
are asked about), and the items bought and seen lately (what business rules exclude),
and emits an :class:`Interaction` for each: the global recommenders learn from those,
in log order, and the store keeps them (``interactions``) to rebuild and train from.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import msgspec

from usertide.engine.base import Interaction, Output, Processor, UserState
from usertide.events import Event
from usertide.processors.features import CART_EVENTS, PURCHASE_EVENTS
from usertide.processors.sessions import Sessionizer

VIEW_EVENTS = frozenset({"Product Viewed", "product_viewed", "view_item", "Viewed Product"})
CLICK_EVENTS = frozenset({"Product Clicked", "product_clicked", "select_item"})
WISHLIST_EVENTS = frozenset({"Product Added to Wishlist", "add_to_wishlist"})
PAGE_TYPES = frozenset({"page", "screen"})
# The snippet's impression and click events: about recommendations, not interactions
# (the click leads to the item's page, which is the interaction).
REC_SHOWN = "Recommendation Shown"
REC_CLICKED = "Recommendation Clicked"
REC_EVENTS = frozenset({REC_SHOWN, REC_CLICKED})
MAX_ID_LENGTH = 200


class ItemConfig(msgspec.Struct, kw_only=True, frozen=True):
    """How events name items, and how much of each user's history is kept."""

    properties: tuple[str, ...] = ("product_id", "item_id", "sku")
    from_path: bool = False  # a page view's path is its item (articles, videos)
    # the item's properties an event may teach the catalogue (Segment's product fields)
    item_properties: tuple[str, ...] = (
        "category", "name", "brand", "price", "variant", "url", "image_url",
    )  # fmt: skip
    session_items: int = 200  # the current session's latest items, in order
    purchased_items: int = 100
    seen_items: int = 200

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ItemConfig:
        """``USERTIDE_ITEM_PROPERTIES`` (comma-separated) and ``USERTIDE_ITEM_FROM_PATH``."""
        env = os.environ if env is None else env
        names = tuple(
            p.strip() for p in env.get("USERTIDE_ITEM_PROPERTIES", "").split(",") if p.strip()
        )
        from_path = env.get("USERTIDE_ITEM_FROM_PATH", "").lower() in ("1", "true", "yes")
        return cls(properties=names or cls().properties, from_path=from_path)


class ItemState(msgspec.Struct, array_like=True):
    session_id: str = ""
    items: list[str] = msgspec.field(default_factory=list)  # this session's, in order
    purchased: list[str] = msgspec.field(default_factory=list)  # latest last
    seen: dict[str, None] = msgspec.field(default_factory=dict)  # distinct, latest last


def kind_of(event: Event) -> str | None:
    """What the event does with its item(s): ``view``, ``click``, ``cart``, ``wishlist``,
    ``purchase``; ``None`` for other events (which may still name an item: a view)."""
    if event.type in PAGE_TYPES:
        return "view"
    name = event.name or ""
    if name in VIEW_EVENTS:
        return "view"
    if name in CLICK_EVENTS:
        return "click"
    if name in CART_EVENTS:
        return "cart"
    if name in WISHLIST_EVENTS:
        return "wishlist"
    if name in PURCHASE_EVENTS:
        return "purchase"
    return None


_SCALARS = frozenset({str, int, float})  # bool is not one: type(), not isinstance()


def _item_id(value: Any) -> str | None:
    kind = type(value)
    if kind is str:
        text: str = value.strip()
    elif kind is int:
        text = str(value)
    else:
        return None
    return text[:MAX_ID_LENGTH] if text else None


class ItemInteractions(Processor[ItemState]):
    name: ClassVar[str] = "items"
    state_type: ClassVar[type[msgspec.Struct]] = ItemState

    def __init__(self, config: ItemConfig | None = None) -> None:
        self.config = config or ItemConfig()
        self._described = frozenset(self.config.item_properties)
        self._ids = frozenset(self.config.properties)

    def initial(self) -> ItemState:
        return ItemState()

    def items_of(self, event: Event) -> Iterator[tuple[str, dict[str, Any]]]:
        """The items the event is about, each with the item properties it carried."""
        if event.type not in ("track", "page", "screen") or event.name in REC_EVENTS:
            return
        properties = event.properties
        found = self._one(properties)
        if found is not None:
            yield found
        products = properties.get("products")
        if isinstance(products, list):
            for product in products[:100]:
                if isinstance(product, dict):
                    one = self._one(product)
                    if one is not None:
                        yield one
        if found is None and self.config.from_path and event.type in PAGE_TYPES:
            path = event.context.page_path
            if path:
                yield path[:MAX_ID_LENGTH], {}

    def _one(self, properties: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
        for name in self.config.properties:
            value = properties.get(name)
            if value is None:
                continue
            item = _item_id(value)
            if item is not None:
                described: dict[str, Any] = {}
                if not self._described.isdisjoint(properties):  # usually none or a few
                    for key in self.config.item_properties:
                        v = properties.get(key)
                        if v is not None and type(v) in _SCALARS:
                            described[key] = v
                return item, described
        return None

    def process(self, event: Event, state: ItemState, user: UserState) -> Sequence[Output]:
        session = user.get(Sessionizer)
        if session.id != state.session_id:
            state.session_id, state.items = session.id, []
        properties = event.properties
        if (
            self._ids.isdisjoint(properties)
            and "products" not in properties
            and not (self.config.from_path and event.type in PAGE_TYPES)
        ):
            return ()  # most events name no item: no generator, no kind
        kind = kind_of(event)
        out: list[Output] = []
        for item, properties in self.items_of(event):
            what = kind or "view"
            state.items.append(item)
            _trim(state.items, self.config.session_items)
            seen = state.seen
            seen.pop(item, None)
            seen[item] = None  # the latest last
            if len(seen) > self.config.seen_items:
                del seen[next(iter(seen))]
            if what == "purchase":
                state.purchased.append(item)
                _trim(state.purchased, self.config.purchased_items)
            out.append(
                Interaction(
                    user_key=user.key,
                    session_id=session.id,
                    item_id=item,
                    kind=what,
                    timestamp=event.timestamp.timestamp(),
                    event_id=event.id,
                    offset=event.offset,
                    properties=properties,
                )
            )
        return out

    def merge(self, into: ItemState, other: ItemState) -> ItemState:
        # The identified user's history gains the anonymous visitor's (its session goes
        # on as the identified user's, whose session id the sessionizer keeps).
        for item in other.seen:
            into.seen.pop(item, None)
            into.seen[item] = None
        while len(into.seen) > self.config.seen_items:
            del into.seen[next(iter(into.seen))]
        into.purchased.extend(other.purchased)
        _trim(into.purchased, self.config.purchased_items)
        if not into.items:
            into.items = list(other.items)
        return into

    def view(self, state: ItemState) -> dict[str, Any]:
        return {
            "session_items": list(state.items),
            "purchased": list(state.purchased),
            "seen": len(state.seen),
        }


def _trim(items: list[str], limit: int) -> None:
    if len(items) > limit:
        del items[: len(items) - limit]
