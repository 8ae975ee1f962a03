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
