from __future__ import annotations

from factories import event
from usertide.engine import Engine, SessionClosed
from usertide.processors import Sessionizer
from usertide.processors.sessions import SessionState


def run(events: list) -> tuple[SessionState, list]:  # type: ignore[type-arg]
    e = Engine([Sessionizer()])
    outputs = []
    for ev in events:
        outputs.extend(e.apply(ev))
    state = e.lookup("jane")
    assert state is not None
    return state.get(Sessionizer), outputs


def test_idle_gap_over_30_minutes_starts_a_new_session() -> None:
    state, outputs = run([event(at=0), event(at=60), event(at=60 + 31 * 60)])
    assert state.total == 2 and state.events == 1
    closed = [o for o in outputs if isinstance(o, SessionClosed)]
    assert len(closed) == 1 and closed[0].events == 2


def test_gap_under_30_minutes_keeps_the_session() -> None:
    state, _ = run([event(at=0), event(at=29 * 60), event(at=58 * 60)])
    assert state.total == 1 and state.events == 3


def test_sessions_end_after_24_hours_even_when_busy() -> None:
    events = [event(at=i * 20 * 60) for i in range(80)]  # every 20 min for ~26 h
    state, _ = run(events)
    assert state.total == 2


def test_client_session_id_change_starts_a_new_session() -> None:
    state, _ = run([event(at=0, session_id="s1"), event(at=5, session_id="s2")])
    assert state.total == 2 and state.id == "s2"


def test_pages_are_counted_and_late_events_do_not_rewind() -> None:
    state, _ = run([event(at=100, type="page"), event(at=50), event(at=120, type="page")])
    assert state.pages == 2 and state.events == 3 and state.last - state.started == 20


def test_merge_keeps_the_most_recent_session_and_sums_totals() -> None:
    s = Sessionizer()
    a = SessionState(id="a", started=0, last=10, events=2, total=3)
    b = SessionState(id="b", started=5, last=50, events=1, total=1)
    merged = s.merge(a, b)
    assert merged.id == "b" and merged.total == 4


def test_a_client_session_id_is_kept_across_idle_gaps() -> None:
    state, closed = run(
        [
            event(at=0, session_id="s1"),
            event(at=3600, session_id="s1"),
            event(at=7200, session_id="s1"),
        ]
    )
    assert closed == [] and state.id == "s1" and state.events == 3


def test_past_24_hours_the_same_client_id_continues_under_its_own_id() -> None:
    state, closed = run([event(at=0, session_id="s1"), event(at=90_000, session_id="s1")])
    assert [c.session_id for c in closed] == ["s1"]
    assert state.id == "s1#2" and state.events == 1
