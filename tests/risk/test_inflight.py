"""InFlight: the sign-ins the log took that the engine has not applied yet."""

from __future__ import annotations

from factories import event
from usertide.events import Event
from usertide.risk.inflight import SWEEP_EVERY, InFlight


def keys(e: Event) -> tuple[str, ...]:
    return (f"u:{e.user_id}", "n:net") if e.name == "login" else ()


def test_taken_sign_ins_count_until_the_engine_applies_them() -> None:
    applied = [0]
    inflight = InFlight(keys, lambda: applied[0])
    a, b = event(user_id="jane", name="login"), event(user_id="bob", name="login")
    other = event(user_id="jane", name="click")
    inflight.taken([a, other, b])  # in the log's queue: no offsets yet
    assert inflight.pending("u:jane") == [a]
    assert inflight.pending("n:net") == [a, b]
    a.offset, other.offset, b.offset = 1, 2, 3  # durable
    applied[0] = 2  # the engine has applied a
    assert inflight.pending("u:jane") == []
    assert inflight.pending("n:net") == [b]
    applied[0] = 3
    assert inflight.pending("n:net") == [] and inflight.pending("u:bob") == []
    assert len(inflight) == 0


def test_a_lost_write_takes_its_sign_ins_out() -> None:
    inflight = InFlight(keys, lambda: 0)
    kept, lost = event(user_id="jane", name="login"), event(user_id="jane", name="login")
    inflight.taken([kept])
    inflight.taken([lost])
    inflight.lost([lost])
    assert inflight.pending("u:jane") == [kept]
    assert inflight.pending("n:net") == [kept]


def test_a_sweep_forgets_what_the_engine_applied() -> None:
    applied = [0]
    inflight = InFlight(keys, lambda: applied[0])
    first = [event(user_id=f"u{i}", name="login") for i in range(5_000)]
    inflight.taken(first)
    for offset, e in enumerate(first, start=1):
        e.offset = offset
    applied[0] = len(first)
    late = [event(user_id=f"late{i}", name="login") for i in range(SWEEP_EVERY)]
    inflight.taken(late)  # SWEEP_EVERY more: a sweep
    assert len(inflight) == 2 * len(late)  # the late ones, under account and network


def test_a_caught_up_copy_is_kept_only_while_it_holds_what_the_engine_applied() -> None:
    applied = [0]
    engine_state: list[str] = []  # what the engine applied, by event id
    inflight = InFlight(keys, lambda: applied[0])
    copies = [0]

    def copy(state: list[str]) -> list[str]:
        copies[0] += 1
        return list(state)

    def catch_up() -> list[str] | None:
        return inflight.caught_up("u:jane", lambda: engine_state, copy, lambda s, e: s.append(e.id))

    def engine_applies(*events: Event) -> None:
        for e in events:
            engine_state.append(e.id)
            applied[0] = e.offset or 0

    a, b, c, d = (event(user_id="jane", name="login", id=i) for i in "abcd")
    for offset, e in enumerate((a, b), start=1):
        inflight.taken([e])
        e.offset = offset
    assert catch_up() == ["a", "b"] and copies[0] == 1
    engine_applies(a)
    inflight.taken([c])
    c.offset = 3
    assert catch_up() == ["a", "b", "c"] and copies[0] == 1  # brought up to date
    engine_applies(b, c)
    inflight.taken([d])
    assert catch_up() == ["a", "b", "c", "d"] and copies[0] == 1
    d.offset = 4
    engine_applies(d)
    assert catch_up() is None  # all applied: the engine's own state is the answer
    e = event(user_id="jane", name="login", id="e")
    f = event(user_id="jane", name="login", id="f")
    inflight.taken([e])
    e.offset = 5
    assert catch_up() == ["a", "b", "c", "d", "e"] and copies[0] == 2
    inflight.taken([f])
    f.offset = 6
    engine_applies(e, f)  # both applied before the next look: the copy never saw f
    g = event(user_id="jane", name="login", id="g")
    inflight.taken([g])
    assert catch_up() == ["a", "b", "c", "d", "e", "f", "g"] and copies[0] == 3
