from __future__ import annotations

import random
from pathlib import Path

from factories import event
from usertide.engine import Engine, IdentityResolver
from usertide.engine.identity import ANON_PREFIX
from usertide.events import Event
from usertide.processors import BehaviourFeatures, Profile, Sessionizer
from usertide.processors.profile import ProfileState
from usertide.store import DuckDBStore


def engine(**kw: object) -> Engine:
    return Engine([Sessionizer(), BehaviourFeatures(), Profile()], **kw)  # type: ignore[arg-type]


def numbered(events: list[Event]) -> list[Event]:
    for i, e in enumerate(events, start=1):
        e.offset = i
    return events


def profile(e: Engine, key: str) -> ProfileState:
    state = e.lookup(key)
    assert state is not None
    return state.get(Profile)


def test_anonymous_activity_merges_into_the_user_on_identify() -> None:
    e = engine()
    for ev in numbered(
        [
            event(user_id=None, anonymous_id="a1", type="page", at=0, path="/"),
            event(user_id=None, anonymous_id="a1", type="page", at=10, path="/p/1"),
            event(
                user_id="jane", anonymous_id="a1", type="identify", at=20, traits={"plan": "pro"}
            ),
            event(user_id=None, anonymous_id="a1", name="click", at=30),
        ]
    ):
        e.apply(ev)
    assert e.lookup(ANON_PREFIX + "a1") is None
    jane = profile(e, "jane")
    assert jane.events == 4
    assert jane.event_counts == {"$page": 2, "$identify": 1, "click": 1}
    assert jane.traits == {"plan": "pro"}
    assert jane.anonymous_ids == ["a1"]
    session = e.lookup("jane")
    assert session is not None and session.get(Sessionizer).events == 4


def test_two_identified_users_are_never_merged() -> None:
    e = engine()
    for ev in numbered(
        [
            event(user_id="jane", anonymous_id="device", at=0),
            event(user_id="bob", anonymous_id="device", at=5),  # shared device, later user
            event(user_id="bob", type="alias", previous_id="jane", name=None, at=6),
        ]
    ):
        e.apply(ev)
    assert profile(e, "jane").events == 1
    assert profile(e, "bob").events == 2
    assert e.identity.aliases == {"device": "jane"}


def test_alias_of_an_anonymous_id_merges() -> None:
    e = engine()
    for ev in numbered(
        [
            event(user_id=None, anonymous_id="old-anon", at=0),
            event(user_id="jane", type="alias", previous_id="old-anon", name=None, at=5),
        ]
    ):
        e.apply(ev)
    assert profile(e, "jane").events == 2


def test_events_at_or_below_the_offset_are_skipped() -> None:
    e = engine()
    evs = numbered([event(at=i) for i in range(3)])
    for ev in evs:
        e.apply(ev)
    assert e.apply(evs[1]) == []
    assert profile(e, "jane").events == 3


def test_cold_states_round_trip_through_bytes() -> None:
    e = engine(hot_capacity=2)
    for i, ev in enumerate(numbered([event(user_id=f"u{i % 5}", at=i) for i in range(50)])):
        e.apply(ev)
        del i
    assert len(e.hot) == 2 and e.user_count() == 5
    assert sum(profile(e, f"u{i}").events for i in range(5)) == 50


def test_resume_from_checkpoint_reaches_the_same_state(tmp_path: Path) -> None:
    rng = random.Random(3)
    evs = []
    t = 0.0
    for i in range(400):
        t += rng.expovariate(1 / 120)
        user = rng.choice(["jane", "bob", None])
        anon = rng.choice(["a1", "a2", "a3"])
        evs.append(
            event(
                id=f"m{i}",
                user_id=user,
                anonymous_id=anon,
                at=t,
                type=rng.choice(["page", "track"]),
                path=f"/p/{rng.randint(1, 30)}",
            )
        )
    store = DuckDBStore(tmp_path / "s.duckdb")
    store.migrate()
    store.append_events(evs)
    uninterrupted = engine()
    for ev in store.read_log_iter(0):
        uninterrupted.apply(ev)

    first = engine()
    log = list(store.read_log_iter(0))
    for ev in log[:170]:
        first.apply(ev)
    store.commit_engine(first.take_commit(first.view))
    for ev in log[170:250]:  # processed but never checkpointed: lost in the "crash"
        first.apply(ev)
    resumed = engine()
    resumed.restore(store.engine_offset("engine"), store.iter_states(), store.aliases())
    for ev in store.read_log_iter(resumed.offset):
        resumed.apply(ev)
    store.close()

    def snapshot(e: Engine) -> dict[str, bytes]:
        keys = set(e.hot) | set(e.cold)
        out = {}
        for k in keys:
            state = e.lookup(k)
            assert state is not None
            out[k] = e.codec.encode(state)
        return out

    assert snapshot(resumed) == snapshot(uninterrupted)
    assert resumed.identity.aliases == uninterrupted.identity.aliases


def test_identity_resolver_routes() -> None:
    r = IdentityResolver()
    assert r.route(event(user_id=None, anonymous_id="a")).key == "anon:a"
    route = r.route(event(user_id="u", anonymous_id="a"))
    assert route == ("u", "anon:a", ("a", "u"))
    assert r.route(event(user_id=None, anonymous_id="a")).key == "u"
    assert r.route(event(user_id="v", anonymous_id="a")) == ("v", None, None)


def test_tiny_hot_capacity_loses_nothing() -> None:
    evs = numbered(
        [
            event(user_id=None, anonymous_id="a1", at=0),
            event(user_id=None, anonymous_id="a1", at=1),
            event(user_id="jane", anonymous_id="a1", at=2),
            *[event(user_id=f"u{i % 3}", at=3 + i) for i in range(9)],
            event(user_id="jane", at=20),
        ]
    )
    for capacity in (0, 1, 2):
        e = engine(hot_capacity=capacity)
        for ev in evs:
            e.apply(ev)
        assert profile(e, "jane").events == 4, capacity
        assert sum(profile(e, f"u{i}").events for i in range(3)) == 9
        assert len(e.hot) <= capacity
