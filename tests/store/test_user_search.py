"""The store's user search over checkpointed profiles, run against every store."""

from __future__ import annotations

from typing import Any

import pytest

from usertide.store import EngineCommit, Store


def profile(traits: dict[str, Any] | None = None, tags: list[str] | None = None) -> dict[str, Any]:
    """The engine's view of a user, as checkpoints store it (only what search reads)."""
    return {
        "profile": {"traits": traits or {}, "last_seen": "2026-11-01T12:00:00Z"},
        "tags": {"tags": tags or [], "reasons": {}},
    }


@pytest.fixture
def people(store: Store) -> Store:
    profiles: dict[str, dict[str, Any] | None] = {
        "jane": profile({"email": "Jane.Doe@Example.com", "name": "Jane"}, ["loyal", "night-owl"]),
        "bob": profile({"email": "bob@corp.test", "age": 41}, ["new"]),
        "JOHN_99": profile({"name": "Jöhn Smith"}, ["loyal", "interest:shoes"]),
        "anon:visitor-7": profile({}, ["new", "mobile-first"]),
        "zed": {"profile": {}},  # a profile without tags or traits
    }
    store.commit_engine(EngineCommit(consumer="engine", offset=1, profiles=profiles))
    return store


def keys(found: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [key for key, _ in found]


def test_everyone_in_key_order_with_their_profiles(people: Store) -> None:
    found = people.search_users()
    assert keys(found) == ["JOHN_99", "anon:visitor-7", "bob", "jane", "zed"]
    assert dict(found)["jane"] == profile(
        {"email": "Jane.Doe@Example.com", "name": "Jane"}, ["loyal", "night-owl"]
    )


def test_search_matches_ids_case_insensitively(people: Store) -> None:
    assert keys(people.search_users(search="john")) == ["JOHN_99"]
    assert keys(people.search_users(search="N_9")) == ["JOHN_99"]
    # a visitor by its anonymous id; the key's prefix is not part of the id
    assert keys(people.search_users(search="VISITOR")) == ["anon:visitor-7"]
    assert keys(people.search_users(search="anon:")) == []


def test_search_matches_trait_values_not_names(people: Store) -> None:
    assert keys(people.search_users(search="example.COM")) == ["jane"]
    assert keys(people.search_users(search="jöhn sm")) == ["JOHN_99"]
    assert keys(people.search_users(search="41")) == ["bob"]
    assert keys(people.search_users(search="email")) == []  # a trait's name, not a value
    assert keys(people.search_users(search=".comjane")) == []  # not across two values
    assert keys(people.search_users(search="jane")) == ["jane"]  # id and trait: once


def test_tag_filters_and_combines_with_search(people: Store) -> None:
    assert keys(people.search_users(tag="loyal")) == ["JOHN_99", "jane"]
    assert keys(people.search_users(tag="LOYAL")) == ["JOHN_99", "jane"]
    assert keys(people.search_users(tag="interest:shoes")) == ["JOHN_99"]
    assert keys(people.search_users(tag="loy")) == []  # a whole tag, not a part
    assert keys(people.search_users(tag="new", search="bob")) == ["bob"]
    assert keys(people.search_users(tag="new", search="jane")) == []


def test_pages_follow_the_key_after(people: Store) -> None:
    first = people.search_users(limit=2)
    assert keys(first) == ["JOHN_99", "anon:visitor-7"]
    second = people.search_users(limit=2, after=first[-1][0])
    assert keys(second) == ["bob", "jane"]
    assert keys(people.search_users(limit=2, after="jane")) == ["zed"]
    assert people.search_users(limit=2, after="zed") == []
    assert keys(people.search_users(tag="loyal", limit=1, after="JOHN_99")) == ["jane"]


def test_search_follows_checkpoints(people: Store) -> None:
    people.commit_engine(
        EngineCommit(
            consumer="engine",
            offset=2,
            profiles={"bob": profile({"email": "bob@corp.test"}, ["loyal"]), "jane": None},
        )
    )
    assert keys(people.search_users(tag="loyal")) == ["JOHN_99", "bob"]
    assert keys(people.search_users(search="jane")) == []


def test_no_profiles_no_users(store: Store) -> None:
    assert store.search_users(search="x", tag="y") == []
