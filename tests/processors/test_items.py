"""Which item an event is about, and each user's items (the engine side of recommendations)."""

from __future__ import annotations

from typing import Any

from factories import event
from usertide.engine import Engine
from usertide.engine.base import Interaction
from usertide.events import Event
from usertide.processors import Sessionizer
from usertide.processors.items import ItemConfig, ItemInteractions, ItemState


def run(events: list[Event], config: ItemConfig | None = None) -> tuple[Engine, list[Any]]:
    engine = Engine([Sessionizer(), ItemInteractions(config)])
    outputs = [o for e in events for o in engine.apply(e) if isinstance(o, Interaction)]
    return engine, outputs


def state(engine: Engine, key: str = "jane") -> ItemState:
    found = engine.lookup(key)
    assert found is not None
    return found.get(ItemInteractions)


def test_items_come_from_the_configured_properties_and_orders() -> None:
    engine, out = run([
        event(name="Product Viewed", properties={"product_id": "p1", "category": "shoes",
                                                 "price": 59.9, "nested": {"x": 1}}, at=0),
        event(name="Product Added", properties={"sku": 42}, at=5),
        event(name="Order Completed", at=9, properties={
            "order_id": "o1",
            "products": [{"product_id": "p1"}, {"product_id": "p7", "name": "Sock"}, "junk"],
        }),
        event(name="click", properties={"product_id": True}, at=12),  # not an id
        event(type="page", path="/shoes/p1", at=15),  # a path is an item only if asked
    ])  # fmt: skip
    assert [(o.item_id, o.kind) for o in out] == [
        ("p1", "view"), ("42", "cart"), ("p1", "purchase"), ("p7", "purchase"),
    ]  # fmt: skip
    assert out[0].properties == {"category": "shoes", "price": 59.9}
    assert out[3].properties == {"name": "Sock"} and out[0].session_id == out[3].session_id
    s = state(engine)
    assert s.items == ["p1", "42", "p1", "p7"]
    assert s.purchased == ["p1", "p7"] and list(s.seen) == ["42", "p1", "p7"]


def test_a_content_site_takes_page_paths_and_a_new_session_starts_empty() -> None:
    config = ItemConfig.from_env({"USERTIDE_ITEM_FROM_PATH": "1",
                                  "USERTIDE_ITEM_PROPERTIES": "article_id"})  # fmt: skip
    assert config.properties == ("article_id",)
    engine, out = run([
        event(type="page", path="/news/a", at=0, session_id="s1"),
        event(name="Read", properties={"article_id": "b"}, at=10, session_id="s1"),
        event(type="page", path="/news/c", at=20, session_id="s2"),
    ], config)  # fmt: skip
    assert [(o.item_id, o.session_id) for o in out] == [
        ("/news/a", "s1"), ("b", "s1"), ("/news/c", "s2"),
    ]  # fmt: skip
    assert state(engine).items == ["/news/c"]


def test_histories_are_bounded_and_interactions_reach_the_commit() -> None:
    config = ItemConfig(session_items=3, seen_items=4, purchased_items=2)
    events = [event(name="Order Completed", properties={"product_id": f"p{i}"}, at=i)
              for i in range(6)]  # fmt: skip
    engine, out = run(events, config)
    s = state(engine)
    assert s.items == ["p3", "p4", "p5"] and s.purchased == ["p4", "p5"]
    assert list(s.seen) == ["p2", "p3", "p4", "p5"]
    commit = engine.take_commit()
    assert commit.interactions == out and len(out) == 6
    assert engine.take_commit().interactions == []


def test_merging_an_anonymous_visitor_keeps_what_they_saw() -> None:
    processor = ItemInteractions()
    known = ItemState(session_id="s", seen=dict.fromkeys(["a", "b"]), purchased=["a"])
    visitor = ItemState(session_id="t", items=["c", "b"], seen=dict.fromkeys(["c", "b"]),
                        purchased=["c"])  # fmt: skip
    merged = processor.merge(known, visitor)
    assert list(merged.seen) == ["a", "c", "b"] and merged.purchased == ["a", "c"]
    assert merged.items == ["c", "b"]
    assert processor.view(merged) == {"session_items": ["c", "b"], "purchased": ["a", "c"],
                                      "seen": 3}  # fmt: skip
