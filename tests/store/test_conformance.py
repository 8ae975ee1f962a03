"""The storage contract, run against every implementation of ``Store``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from factories import T0, event, failed
from stores import StoreFactory
from usertide.events import Event, FailureReason
from usertide.events.interaction import Interaction
from usertide.store import EngineCommit, EventQuery, Store
from usertide.store.base import Item, SessionQuery, SessionRecord


def test_migrate_is_idempotent_and_survives_reopen(factory: StoreFactory) -> None:
    s = factory()
    version = s.migrate()
    assert s.migrate() == version
    s.append_events([event(id="a")])
    s.close()
    again = factory()
    assert again.migrate() == version
    assert again.count_events() == 1
    again.close()


def test_append_assigns_increasing_offsets_and_dedups(store: Store) -> None:
    first = store.append_events([event(id="a"), event(id="b"), event(id="a")])
    assert [e.id for e in first] == ["a", "b"]
    offsets = [e.offset for e in first]
    assert offsets == sorted(offsets) and len(set(offsets)) == 2
    second = store.append_events([event(id="b"), event(id="c")])
    assert [e.id for e in second] == ["c"]
    assert second[0].offset is not None and first[1].offset is not None
    assert second[0].offset > first[1].offset
    assert store.count_events() == 3
    assert store.last_offset() == second[0].offset


def test_load_dedups_against_stored_ids_in_one_transaction(store: Store) -> None:
    def at(offset: int, id: str) -> Event:
        e = event(id=id)
        e.offset = offset
        return e

    assert [e.id for e in store.load([at(1, "a"), at(2, "b")], (), None)] == ["a", "b"]
    # A stretch that repeats a stored id, with a failed event and the position: the
    # new events, the failed one and the position are all stored, the repeat is not.
    new = store.load([at(3, "b"), at(4, "c")], [failed(id="f1")], 5)
    assert [e.id for e in new] == ["c"]
    assert store.count_events() == 3
    assert [f.id for f in store.query_failed()] == ["f1"]
    assert store.loaded_through() == 5
    assert [e.id for e in store.read_log(0, 10)] == ["a", "b", "c"]
    # Everything repeated: nothing new, and nothing else changes.
    assert store.load([at(6, "a"), at(7, "c")], [failed(id="f1")], 7) == []
    assert store.count_events() == 3 and len(store.query_failed()) == 1
    assert store.loaded_through() == 7


def test_offsets_continue_after_reopen(factory: StoreFactory) -> None:
    s = factory()
    s.migrate()
    (a,) = s.append_events([event(id="a")])
    s.close()
    s = factory()
    s.migrate()
    (b,) = s.append_events([event(id="b")])
    assert a.offset is not None and b.offset is not None and b.offset > a.offset
    assert [e.id for e in s.append_events([event(id="a")])] == []
    s.close()


def test_read_log_round_trips_events(store: Store) -> None:
    original = event(id="x", traits={"plan": "pro"}, properties={"n": 1, "nested": {"k": [1, 2]}})
    store.append_events([original, event(id="y")])
    log = store.read_log(0, 10)
    assert [e.id for e in log] == ["x", "y"]
    assert log[0].traits == {"plan": "pro"}
    assert log[0].properties == {"n": 1, "nested": {"k": [1, 2]}}
    assert log[0].timestamp == original.timestamp
    assert store.read_log(log[0].offset or 0, 10)[0].id == "y"
    assert [e.id for e in store.read_log_iter(0, batch=1)] == ["x", "y"]


def test_query_events_filters_and_paginates(store: Store) -> None:
    store.append_events(
        [
            event(id="1", user_id="jane", name="click", at=0),
            event(id="2", user_id="bob", name="click", at=10),
            event(id="3", user_id="jane", name="buy", at=20),
            event(id="4", user_id=None, anonymous_id="a1", name="click", at=30),
        ]
    )
    assert [e.id for e in store.query_events(EventQuery(user_id="jane"))] == ["1", "3"]
    assert [e.id for e in store.query_events(EventQuery(name="click"))] == ["1", "2", "4"]
    assert [e.id for e in store.query_events(EventQuery(anonymous_id="a1"))] == ["4"]
    window = EventQuery(since=T0.replace(second=5), until=T0.replace(second=25))
    assert [e.id for e in store.query_events(window)] == ["2", "3"]
    page1 = store.query_events(EventQuery(limit=2))
    page2 = store.query_events(EventQuery(limit=2, after_offset=page1[-1].offset))
    assert [e.id for e in page1 + page2] == ["1", "2", "3", "4"]


def test_user_query_includes_merged_anonymous_events(store: Store) -> None:
    store.append_events([event(id="1", user_id=None, anonymous_id="a1"), event(id="2")])
    store.commit_engine(EngineCommit(consumer="engine", offset=2, aliases={"a1": "jane"}))
    assert [e.id for e in store.query_events(EventQuery(user_id="jane"))] == ["1", "2"]


def test_failed_events_are_kept_with_reason(store: Store) -> None:
    store.append_failed([failed(id="f1"), failed(FailureReason.MALFORMED_JSON, id="f2", raw="{")])
    assert store.count_failed() == 2
    kept = {f.id: f for f in store.query_failed()}
    assert kept["f2"].reason is FailureReason.MALFORMED_JSON and kept["f2"].raw == "{"
    assert [f.id for f in store.query_failed(reason="malformed_json")] == ["f2"]
    store.append_failed([failed(id="f1")])  # replays are idempotent
    assert store.count_failed() == 2


def test_engine_commit_is_applied_together(store: Store) -> None:
    assert store.engine_offset("engine") == 0
    store.commit_engine(
        EngineCommit(
            consumer="engine",
            offset=7,
            states={"jane": b"\x01\x02", "anon:a1": b"\x03"},
            profiles={"jane": {"events": 3}},
            aliases={"a1": "jane"},
        )
    )
    assert store.engine_offset("engine") == 7
    assert dict(store.iter_states()) == {"jane": b"\x01\x02", "anon:a1": b"\x03"}
    assert store.get_profile("jane") == {"events": 3}
    assert store.aliases() == {"a1": "jane"}
    store.commit_engine(
        EngineCommit(
            consumer="engine",
            offset=9,
            states={"jane": b"\x09", "anon:a1": None},
            profiles={"jane": {"events": 4}},
        )
    )
    assert dict(store.iter_states()) == {"jane": b"\x09"}
    assert store.get_profile("jane") == {"events": 4}
    assert store.engine_offset("engine") == 9
    assert store.engine_offset("other") == 0


def test_keys_are_stored_by_kind(store: Store) -> None:
    store.put_key("k1", "admin", "d1")
    store.put_key("k2", "write", "d2")
    assert store.keys("admin") == {"k1": "d1"}
    assert store.keys("write") == {"k2": "d2"}


def test_erase_user_removes_everything_about_them(store: Store) -> None:
    store.append_events(
        [
            event(id="1", user_id="jane"),
            event(id="2", user_id=None, anonymous_id="a1"),
            event(id="3", user_id="bob"),
        ]
    )
    store.append_failed([failed(id="f1", user_id="jane"), failed(id="f2", user_id="bob")])
    store.commit_engine(
        EngineCommit(
            consumer="engine",
            offset=3,
            states={"jane": b"j", "bob": b"b"},
            profiles={"jane": {"x": 1}, "bob": {"x": 2}},
            aliases={"a1": "jane"},
        )
    )
    report = store.erase_user("jane")
    assert (
        report.events,
        report.failed_events,
        report.states,
        report.profiles,
        report.aliases,
    ) == (2, 1, 1, 1, 1)
    assert [e.id for e in store.read_log(0, 10)] == ["3"]
    assert dict(store.iter_states()) == {"bob": b"b"}
    assert store.get_profile("jane") is None and store.get_profile("bob") == {"x": 2}
    assert [f.id for f in store.query_failed()] == ["f2"]
    assert store.aliases() == {}


def test_top_values(store: Store) -> None:
    store.append_events(
        [event(id=str(i), type="page", path=f"/p/{i % 3}") for i in range(7)]
        + [event(id="t", name="buy")]
    )
    assert store.top_values("page_path", 2) == [("/p/0", 3), ("/p/1", 2)]
    assert store.top_values("type") == [("page", 7), ("track", 1)]


def test_outbox_is_durable_and_idempotent(factory: StoreFactory) -> None:
    from datetime import timedelta

    from usertide.notify import Notification, NotificationStatus

    s = factory()
    s.migrate()
    note = Notification(
        id="n1",
        channel="email",
        recipient="a@example.com",
        kind="admin_alert",
        subject="s",
        text="t",
        created_at=T0,
    )
    later = Notification(
        id="n2",
        channel="webhook",
        recipient="https://x.test/h",
        kind="admin_alert",
        payload={"k": 1},
        created_at=T0,
        next_attempt_at=T0 + timedelta(minutes=5),
    )
    assert s.outbox_add([note, later]) == 2
    assert s.outbox_add([note]) == 0
    assert [n.id for n in s.outbox_due(T0)] == ["n1"]
    assert [n.id for n in s.outbox_due(T0 + timedelta(minutes=6))] == ["n1", "n2"]
    note.status = NotificationStatus.DELIVERED
    note.attempts = 1
    s.outbox_save(note)
    s.close()
    s = factory()
    s.migrate()
    assert [n.id for n in s.outbox_due(T0 + timedelta(hours=1))] == ["n2"]
    (delivered,) = s.outbox_list(NotificationStatus.DELIVERED)
    assert delivered.attempts == 1 and delivered.subject == "s"
    s.close()


def test_alerts_round_trip_and_filters(store: Store) -> None:
    from datetime import timedelta

    from usertide.alerts import Alert, AlertStatus
    from usertide.engine import Reason

    def make(i: int, user: str) -> Alert:
        at = T0 + timedelta(minutes=i)
        return Alert(
            id=f"a{i}",
            user_id=user,
            detector="login_risk",
            event_id=f"e{i}",
            level="high",
            score=0.9,
            reasons=(Reason(code="new_country", message="m"),),
            created_at=at,
            updated_at=at,
            occurred_at=at,
        )

    assert store.alert_add(make(1, "jane")) and store.alert_add(make(2, "bob"))
    assert not store.alert_add(make(1, "jane"))
    # a batch: new ones stored, an existing id and a repeat within the batch are not
    assert store.alerts_add([make(3, "ann"), make(1, "jane"), make(3, "ann")]) == {"a3"}
    assert store.alerts_add([]) == set()
    assert store.alert_get("a3") is not None and len(store.alerts(user_id="ann")) == 1
    store.erase_user("ann")
    assert [a.id for a in store.alerts()] == ["a2", "a1"]
    assert [a.id for a in store.alerts(user_id="jane")] == ["a1"]
    alert = store.alert_get("a1")
    assert alert is not None and alert.reasons[0].code == "new_country"
    alert.status = AlertStatus.DISMISSED
    store.alert_save(alert)
    assert [a.id for a in store.alerts(status="open")] == ["a2"]
    assert store.alerts(since=T0 + timedelta(minutes=2))[0].id == "a2"
    assert store.erase_user("jane").alerts == 1
    assert store.alert_get("a1") is None


def test_models_keep_every_version(factory: StoreFactory) -> None:
    store = factory()
    store.migrate()
    assert store.model_latest("population") is None
    assert store.model_get("population", 1) is None
    store.model_put("population", 1, b"one")
    store.model_put("population", 2, b"two")
    store.model_put("other", 9, b"nine")
    store.close()
    store = factory()
    assert store.model_latest("population") == (2, b"two")
    assert store.model_get("population", 1) == b"one"
    assert store.model_get("population", 3) is None
    assert store.model_get("other", 9) == b"nine"
    store.close()


def test_model_versions_list_their_meta(store: Store) -> None:
    store.model_put("session_anomaly", 1, b"a", {"kind": "isolation_forest", "rows": 10})
    store.model_put("session_anomaly", 2, b"b", {"kind": "isolation_forest", "rows": 20})
    store.model_put("population", 1, b"p")
    infos = store.model_versions()
    assert [(i.name, i.version) for i in infos] == [
        ("population", 1), ("session_anomaly", 2), ("session_anomaly", 1),
    ]  # fmt: skip
    assert infos[0].meta == {} and infos[1].meta["rows"] == 20
    assert [i.version for i in store.model_versions("session_anomaly")] == [2, 1]
    assert infos[1].created_at.tzinfo is not None


def _session(
    sid: str, key: str, started: float, ended: float, score: float | None, **kw: object
) -> SessionRecord:
    anon = key.startswith("anon:")
    return SessionRecord(
        session_id=sid,
        user_key=key,
        user_id=None if anon else key,
        anonymous_id=key[5:] if anon else None,
        started=T0.timestamp() + started,
        ended=T0.timestamp() + ended,
        events=3,
        features={"pages_per_session": 3.0},
        anomaly=None
        if score is None
        else {"score": score, "label": "Anomaly" if score > 0.6 else "Normal"},
        **kw,  # type: ignore[arg-type]
    )


def test_sessions_are_upserted_filtered_ordered_and_paged(store: Store) -> None:
    store.commit_engine(
        EngineCommit(
            consumer="engine",
            offset=1,
            sessions=[
                _session("s1", "jane", 0, 60, 0.4),
                _session("s2", "jane", 100, 200, 0.7),
                _session("s3", "anon:v1", 50, 300, None),
                _session("s4", "bob", 10, 20, 0.65),
            ],
        )
    )
    # a later commit rewrites s1 (live sessions are rewritten at every checkpoint)
    closed = _session("s1", "jane", 0, 90, 0.45, closed=True)
    store.commit_engine(EngineCommit(consumer="engine", offset=2, sessions=[closed]))
    recent = store.sessions(SessionQuery())
    assert [s.session_id for s in recent] == ["s3", "s2", "s1", "s4"]  # last activity first
    assert recent[2].closed and recent[2].ended == T0.timestamp() + 90
    by_score = store.sessions(SessionQuery(order="score"))
    assert [s.session_id for s in by_score] == ["s2", "s4", "s1", "s3"]
    assert [s.session_id for s in store.sessions(SessionQuery(user_keys=("jane",)))] == [
        "s2", "s1",
    ]  # fmt: skip
    assert [s.session_id for s in store.sessions(SessionQuery(min_score=0.6))] == ["s2", "s4"]
    assert [s.session_id for s in store.sessions(SessionQuery(label="Normal"))] == ["s1"]
    window = SessionQuery(since=T0 + timedelta(seconds=95), until=T0 + timedelta(seconds=150))
    assert [s.session_id for s in store.sessions(window)] == ["s3", "s2"]
    page = store.sessions(SessionQuery(order="score", limit=2))
    rest = store.sessions(
        SessionQuery(order="score", after=(page[-1].anomaly["score"], page[-1].session_id))  # type: ignore[index]
    )
    assert [s.session_id for s in page + rest] == ["s2", "s4", "s1", "s3"]
    last = recent[1]
    after = store.sessions(SessionQuery(after=(round(last.ended * 1e6), last.session_id)))
    assert [s.session_id for s in after] == ["s1", "s4"]
    features = store.session_features(None, 10)
    assert [ended for ended, _ in features] == sorted(ended for ended, _ in features)
    assert len(features) == 4 and features[0][1] == {"pages_per_session": 3.0}
    assert len(store.session_features(T0 + timedelta(seconds=100), 10)) == 2
    assert store.erase_user("jane").sessions == 2
    assert [s.session_id for s in store.sessions(SessionQuery())] == ["s3", "s4"]


def _interaction(
    event_id: str, offset: int, item: str, user: str = "jane", **kw: Any
) -> Interaction:
    return Interaction(
        user_key=user, session_id=f"s-{user}", item_id=item, kind=kw.pop("kind", "view"),
        timestamp=T0.timestamp() + offset, event_id=event_id, offset=offset, **kw,
    )  # fmt: skip


def test_interactions_are_kept_in_log_order_once_and_erased_with_the_user(store: Store) -> None:
    first = [
        _interaction("e2", 2, "shoe", properties={"category": "shoes", "price": 59.0}),
        _interaction("e1", 1, "hat"),
        _interaction("e3", 3, "sock", kind="purchase"),
        _interaction("e3", 3, "shoe", kind="purchase"),  # an order of two products
        _interaction("e4", 4, "hat", user="anon:v1"),
    ]
    store.commit_engine(EngineCommit(consumer="engine", offset=4, interactions=first))
    # a commit retried after a failure brings the same events again: kept once
    store.commit_engine(EngineCommit(consumer="engine", offset=4, interactions=first[:2]))
    stored = store.interactions()
    assert [(i.event_id, i.item_id) for i in stored] == [
        ("e1", "hat"), ("e2", "shoe"), ("e3", "sock"), ("e3", "shoe"), ("e4", "hat"),
    ]  # fmt: skip
    assert stored[1] == first[0]
    assert [i.event_id for i in store.interactions(after_offset=2, limit=2)] == ["e3", "e3"]
    store.commit_engine(EngineCommit(consumer="engine", offset=4, aliases={"v1": "jane"}))
    store.erase_user("jane")
    assert store.interactions() == []


def test_items_are_upserted_and_listed(store: Store) -> None:
    store.items_put([
        Item(item_id="b", properties={"category": "shoes"}, updated=T0.timestamp()),
        Item(item_id="a", properties={"category": "hats", "price": 10}, available=False),
        Item(item_id="b", properties={"category": "boots"}),  # the last of an id wins
    ])  # fmt: skip
    items = store.items_all()
    assert [(i.item_id, i.properties, i.available) for i in items] == [
        ("a", {"category": "hats", "price": 10}, False), ("b", {"category": "boots"}, True),
    ]  # fmt: skip
    store.items_put([Item(item_id="a", properties={}, available=True)])
    assert store.items_all()[0].available
