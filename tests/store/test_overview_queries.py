"""The store's queries behind the dashboard's live overview, run against every store."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from factories import T0, event, failed
from usertide.events import Context, Event, FailureReason, Geo
from usertide.store import EngineCommit, Store


def arrived(at: float, **kw: Any) -> Event:
    """An event received ``at`` seconds after T0 (and stamped then)."""
    context = kw.pop("context", None)
    e = event(at=at, **kw)
    if context is not None:
        e.context = context
    return e


def test_received_per_minute_counts_by_arrival(store: Store) -> None:
    e = arrived(200)
    e.timestamp = T0  # a client clock far off: arrival decides
    store.append_events([arrived(0), arrived(10), arrived(70), arrived(-5), e])
    got = store.received_per_minute(T0, T0 + timedelta(seconds=180))
    assert got == [(T0, 2), (T0 + timedelta(minutes=1), 1)]
    assert store.received_per_minute(T0, T0 + timedelta(minutes=5))[-1] == (
        T0 + timedelta(minutes=3),
        1,
    )


def test_active_users_counts_people_once(store: Store) -> None:
    store.append_events(
        [
            arrived(10, user_id="jane"),
            arrived(11, user_id="jane"),
            arrived(12, user_id=None, anonymous_id="a1"),  # merged into jane below
            arrived(13, user_id=None, anonymous_id="a2"),
            arrived(-60, user_id="bob"),  # before the window
        ]
    )
    store.commit_engine(EngineCommit(consumer="engine", offset=5, aliases={"a1": "jane"}))
    assert store.active_users(T0) == 2
    assert store.active_users(T0 + timedelta(seconds=13)) == 1
    assert store.active_users(T0 - timedelta(minutes=5)) == 3


def test_top_received_ranks_within_the_window(store: Store) -> None:
    us = Context(page_path="/cart", geo=Geo(country="US"))
    store.append_events(
        [
            arrived(1, name="buy", context=us),
            arrived(2, name="buy"),
            arrived(3, name="view", context=us),
            arrived(-100, name="old"),
            arrived(-90, name="old"),
            arrived(-80, name="old"),
        ]
    )
    assert store.top_received("name", T0) == [("buy", 2), ("view", 1)]
    assert store.top_received("name", T0, limit=1) == [("buy", 2)]
    assert store.top_received("country", T0) == [("US", 2)]
    assert store.top_received("page_path", T0) == [("/cart", 2)]
    with pytest.raises(ValueError):
        store.top_received("body; DROP TABLE events", T0)  # type: ignore[arg-type]


def page(at: float, url: str, referrer: str | None = None, **props: Any) -> Event:
    return arrived(
        at,
        type="page",
        properties=props,
        context=Context(page_url=url, page_referrer=referrer),
    )


def test_top_sources_are_other_sites_campaigns_or_direct(store: Store) -> None:
    shop = "https://shop.example/cart"
    store.append_events(
        [
            page(1, shop, "https://www.Google.com/search?q=x"),
            page(2, shop, "https://user@www.google.com:443/"),
            page(3, shop, "https://shop.example/"),  # navigation within the site
            page(4, shop),
            page(5, shop, "https://shop.example/", utm_source="newsletter"),
            page(6, shop, "not a url"),
            page(-50, shop, "https://old.example/"),
            arrived(7, name="click", context=Context(page_referrer="https://x.example/")),
        ]
    )
    assert store.top_sources(T0) == [("(direct)", 2), ("www.google.com", 2), ("newsletter", 1)]


def test_failed_reasons(store: Store) -> None:
    store.append_failed(
        [
            failed(),
            failed(),
            failed(FailureReason.MALFORMED_JSON, received_at=T0 + timedelta(seconds=5)),
            failed(FailureReason.MALFORMED_JSON, received_at=T0 - timedelta(hours=1)),
        ]
    )
    assert store.failed_reasons() == [("malformed_json", 2), ("missing_event_name", 2)]
    assert store.failed_reasons(T0 + timedelta(seconds=1)) == [("malformed_json", 1)]
