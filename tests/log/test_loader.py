"""Loader and GroupCommitter: from the log's files into the store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import usertide.log.loader as loader_module
from factories import event, failed
from usertide.events import Event, FailedEvent, FailureReason
from usertide.log import GroupCommitter, Loader, LogUnavailable, SegmentLog
from usertide.log.records import to_records
from usertide.log.segments import SUFFIX
from usertide.store import DuckDBStore

WAIT = 5.0


def firsts(directory: Path) -> list[int]:
    return sorted(int(p.name[: -len(SUFFIX)]) for p in directory.glob(f"*{SUFFIX}"))


def stored(store: DuckDBStore) -> list[tuple[int | None, str]]:
    return [(e.offset, e.id) for e in store.read_log(0, 10_000)]


def open_store(path: Path | str = ":memory:") -> DuckDBStore:
    store = DuckDBStore(path)
    store.migrate()
    return store


@dataclass
class Loads:
    """What the loader handed to ``on_load``."""

    calls: list[tuple[list[str], int]] = field(default_factory=list)

    def __call__(self, new: Sequence[Event], through: int, written_at: float) -> None:
        assert isinstance(written_at, float)
        assert [e.offset for e in new] == sorted(e.offset for e in new if e.offset is not None)
        self.calls.append(([e.id for e in new], through))

    @property
    def ids(self) -> list[str]:
        return [i for ids, _ in self.calls for i in ids]


@dataclass
class Rig:
    store: DuckDBStore
    segments: SegmentLog
    loader: Loader
    committer: GroupCommitter
    loads: Loads
    directory: Path


@contextmanager
def make_rig(
    tmp_path: Path,
    store: DuckDBStore | None = None,
    *,
    segment_bytes: int = 64 * 1024 * 1024,
    max_pending_events: int = 200_000,
    retry_seconds: float = 0.5,
) -> Iterator[Rig]:
    store = store or open_store()
    directory = tmp_path / "log"
    segments = SegmentLog(
        directory, start_after=store.loaded_through(), segment_bytes=segment_bytes
    )
    loads = Loads()
    loader = Loader(store, segments, on_load=loads, retry_seconds=retry_seconds)
    committer = GroupCommitter(segments, loader, max_pending_events=max_pending_events)
    try:
        yield Rig(store, segments, loader, committer, loads, directory)
    finally:
        committer.stop()
        loader.stop()
        segments.close()
        store.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    with make_rig(tmp_path) as r:
        yield r


# -- append_sync into a running loader -------------------------------------------------


def test_append_sync_events_reach_the_store(rig: Rig) -> None:
    rig.loader.start()
    events = [event(at=i) for i in range(3)]
    bad = failed()
    last = rig.committer.append_sync(events, [bad])
    assert last == 4  # three events, then the failed one
    assert [e.offset for e in events] == [1, 2, 3]
    assert rig.committer.last_offset == 4
    assert rig.loader.wait_for(last, timeout=WAIT)
    assert rig.loader.loaded == 4
    assert stored(rig.store) == [(1, events[0].id), (2, events[1].id), (3, events[2].id)]
    assert rig.store.loaded_through() == 4
    assert [f.id for f in rig.store.query_failed()] == [bad.id]

    more = [event(at=10), event(at=11)]
    assert rig.committer.append_sync(more) == 6
    assert rig.loader.wait_for(6, timeout=WAIT)
    assert [o for o, _ in stored(rig.store)] == [1, 2, 3, 5, 6]
    # The position is written at most once a second while running, and at stop.
    assert rig.store.loaded_through() in (4, 6)
    rig.loader.stop()
    assert rig.store.loaded_through() == 6
    assert rig.loads.ids == [e.id for e in events + more]
    assert rig.loads.calls[-1][1] == 6


def test_stored_events_keep_their_content(rig: Rig) -> None:
    rig.loader.start()
    original = event(
        user_id="bob",
        name="signup",
        at=42.5,
        path="/join",
        properties={"plan": "pro", "seats": 3},
    )
    last = rig.committer.append_sync([original])
    assert rig.loader.wait_for(last, timeout=WAIT)
    (back,) = rig.store.read_log(0, 10)
    assert back == original


def test_wait_for_a_loader_that_is_not_running_returns_false(rig: Rig) -> None:
    last = rig.committer.append_sync([event()])
    assert rig.loader.wait_for(last, timeout=WAIT) is False
    assert rig.loader.wait_for(0, timeout=WAIT) is True
    assert rig.loader.backlog == 1
    assert stored(rig.store) == []


def test_stop_loads_what_is_pending(rig: Rig) -> None:
    rig.loader.start()
    events = [event() for _ in range(5)]
    for e in events:
        rig.committer.append_sync([e])
    rig.loader.stop()
    assert rig.loader.loaded == 5
    assert rig.loader.backlog == 0
    assert [i for _, i in stored(rig.store)] == [e.id for e in events]


# -- duplicates ------------------------------------------------------------------------


def test_duplicates_are_stored_once_and_on_load_gets_only_new_events(rig: Rig) -> None:
    rig.loader.start()
    a, b = event(id="a"), event(id="b")
    last = rig.committer.append_sync([a, b, event(id="a")])
    assert last == 3
    assert rig.loader.wait_for(last, timeout=WAIT)
    assert rig.loads.calls == [(["a", "b"], 3)]

    last = rig.committer.append_sync([event(id="b"), event(id="c"), event(id="c")])
    assert last == 6
    assert rig.loader.wait_for(last, timeout=WAIT)
    assert rig.loads.calls[-1] == (["c"], 6)

    # Nothing new at all: on_load still learns the offset is loaded.
    last = rig.committer.append_sync([event(id="a")])
    assert rig.loader.wait_for(last, timeout=WAIT)
    assert rig.loads.calls[-1] == ([], 7)

    assert stored(rig.store) == [(1, "a"), (2, "b"), (5, "c")]
    assert rig.store.count_events() == 3
    assert rig.loader.loaded == 7
    assert rig.loader.metrics.events_stored._value.get() == 3
    assert rig.loader.metrics.events_duplicate._value.get() == 4


# -- failed events ---------------------------------------------------------------------


def test_failed_events_end_in_query_failed(rig: Rig) -> None:
    rig.loader.start()
    f1 = failed()
    f2 = failed(FailureReason.INVALID_TIMESTAMP, message="bad time", user_id="jane")
    last = rig.committer.append_sync([], [f1, f2])
    assert last == 2
    assert rig.loader.wait_for(last, timeout=WAIT)
    back = {f.id: f for f in rig.store.query_failed()}
    assert set(back) == {f1.id, f2.id}
    assert back[f2.id].reason is FailureReason.INVALID_TIMESTAMP
    assert back[f2.id].message == "bad time"
    assert back[f2.id].user_id == "jane"
    assert rig.store.count_failed() == 2
    assert rig.store.count_events() == 0
    assert rig.store.loaded_through() == 2
    assert rig.loads.calls == [([], 2)]


# -- recovery from the files -----------------------------------------------------------


def test_recovery_loads_what_the_log_holds(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    events = [event(at=i) for i in range(5)]
    bad = failed()
    log = SegmentLog(directory)
    assert log.append(to_records(events[:3], [bad])) == 1  # offsets 1-3, failed 4
    log.roll()
    assert log.append(to_records(events[3:], [])) == 5  # offsets 5-6
    log.close()
    assert firsts(directory) == [1, 5]

    db = tmp_path / "store.duckdb"
    store = open_store(db)
    segments = SegmentLog(directory, start_after=store.loaded_through())
    loads = Loads()
    loader = Loader(store, segments, on_load=loads)
    try:
        loader.start()  # recovery runs before start returns
        assert loader.loaded == 6
        assert store.loaded_through() == 6
        assert stored(store) == [
            (1, events[0].id),
            (2, events[1].id),
            (3, events[2].id),
            (5, events[3].id),
            (6, events[4].id),
        ]
        assert [f.id for f in store.query_failed()] == [bad.id]
        assert loads.calls == [([e.id for e in events], 6)]
        assert loader.wait_for(6, timeout=WAIT)
        # The closed segment is in the store now; the active one stays.
        assert firsts(directory) == [5]
        assert loader.backlog == 0
    finally:
        loader.stop()
        segments.close()
        store.close()

    # A second start finds nothing more to load.
    store = open_store(db)
    segments = SegmentLog(directory, start_after=store.loaded_through())
    loader = Loader(store, segments)
    try:
        assert loader.loaded == 6
        assert segments.last_offset == 6
        assert loader.recover() == 0
        assert store.count_events() == 5
        assert store.count_failed() == 1
    finally:
        segments.close()
        store.close()


def test_recovery_resumes_after_what_the_store_holds(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    db = tmp_path / "store.duckdb"
    first = [event() for _ in range(3)]
    later = [event() for _ in range(2)]

    store = open_store(db)
    segments = SegmentLog(directory)
    loader = Loader(store, segments)
    committer = GroupCommitter(segments, loader)
    try:
        loader.start()
        assert loader.wait_for(committer.append_sync(first), timeout=WAIT)
        loader.stop()
        # Acknowledged (durable in the log) but never loaded: a crash right now.
        committer.append_sync(later)
        assert loader.backlog == 2
        assert store.loaded_through() == 3
    finally:
        committer.stop()
        loader.stop()
        segments.close()
        store.close()

    store = open_store(db)
    segments = SegmentLog(directory, start_after=store.loaded_through())
    loads = Loads()
    loader = Loader(store, segments, on_load=loads)
    try:
        assert loader.recover() == 2
        assert loads.calls == [([e.id for e in later], 5)]
        assert stored(store) == [(i, e.id) for i, e in enumerate(first + later, start=1)]
        assert store.loaded_through() == 5
    finally:
        segments.close()
        store.close()


def test_recovery_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader_module, "RECOVERY_CHUNK", 2)
    directory = tmp_path / "log"
    events = [event(id=f"x{i}") for i in range(5)]
    log = SegmentLog(directory)
    log.append(to_records(events, []))
    log.append(to_records([event(id="x0")], []))  # a duplicate of offset 1, at 6
    log.close()

    store = open_store()
    segments = SegmentLog(directory)
    loads = Loads()
    loader = Loader(store, segments, on_load=loads)
    try:
        assert loader.recover() == 6
        assert loads.calls == [(["x0", "x1"], 2), (["x2", "x3"], 4), (["x4"], 6)]
        assert stored(store) == [(i, f"x{i - 1}") for i in range(1, 6)]
        assert store.loaded_through() == 6
    finally:
        segments.close()
        store.close()


def test_fully_loaded_closed_segments_are_dropped(tmp_path: Path) -> None:
    # A tiny segment size: every append closes its segment.
    with make_rig(tmp_path, segment_bytes=1) as r:
        r.loader.start()
        last = 0
        for _ in range(4):
            last = r.committer.append_sync([event(), event()])
        assert last == 8
        assert r.loader.wait_for(last, timeout=WAIT)
        r.loader.stop()  # its last drop runs after wait_for returns
        assert firsts(r.directory) == [9]  # only the empty active segment is left
        assert r.store.count_events() == 8


def test_segments_not_yet_loaded_are_kept(tmp_path: Path) -> None:
    with make_rig(tmp_path, segment_bytes=1) as r:
        for _ in range(3):
            r.committer.append_sync([event()])
        assert firsts(r.directory) == [1, 2, 3, 4]
        # Recovery loads them and drops the closed ones.
        assert r.loader.recover() == 3
        assert firsts(r.directory) == [4]


# -- a failing store -------------------------------------------------------------------


class FlakyStore(DuckDBStore):
    """Fails the first ``failures`` loads; notes whether the loader looked healthy."""

    def __init__(self, failures: int = 1) -> None:
        super().__init__(":memory:")
        self.failures = failures
        self.calls = 0
        self.loader: Loader | None = None
        self.healthy_seen: list[bool] = []

    def load(
        self, events: Sequence[Event], failed: Sequence[FailedEvent], through: int
    ) -> list[Event]:
        self.calls += 1
        if self.loader is not None:
            self.healthy_seen.append(self.loader.healthy)
        if self.calls <= self.failures:
            raise RuntimeError("database is locked")
        return super().load(events, failed, through)


def test_a_failing_store_is_retried(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    flaky = FlakyStore(failures=2)
    flaky.migrate()
    with make_rig(tmp_path, flaky, retry_seconds=0.01) as r:
        flaky.loader = r.loader
        r.loader.start()
        assert r.loader.healthy
        events = [event(), event()]
        bad = failed()
        last = r.committer.append_sync(events, [bad])
        assert r.loader.wait_for(last, timeout=WAIT)
        assert flaky.calls == 3
        assert flaky.healthy_seen == [True, False, False]
        assert r.loader.healthy
        assert stored(flaky) == [(1, events[0].id), (2, events[1].id)]
        assert [f.id for f in flaky.query_failed()] == [bad.id]
        assert flaky.loaded_through() == 3
        assert r.loads.calls == [([e.id for e in events], 3)]
    assert "retrying" in caplog.text


# -- the async path --------------------------------------------------------------------


def test_async_append_returns_the_last_offset(rig: Rig) -> None:
    rig.loader.start()
    rig.committer.start()
    singles = [event() for _ in range(10)]

    async def main() -> tuple[int, int, int, list[int]]:
        pair = [event(), event()]
        a = await rig.committer.append(pair)
        b = await rig.committer.append([], [failed()])
        none = await rig.committer.append([])
        many = await asyncio.gather(*(rig.committer.append([e]) for e in singles))
        return a, b, none, list(many)

    a, b, none, many = asyncio.run(main())
    assert (a, b, none) == (2, 3, 0)
    # Concurrent requests may share a commit: each gets the offset its commit ends at.
    for e, returned in zip(singles, many, strict=True):
        assert e.offset is not None
        assert e.offset <= returned <= 13
    assert sorted(e.offset for e in singles if e.offset is not None) == list(range(4, 14))
    assert max(many) == 13
    assert rig.committer.last_offset == 13
    assert rig.loader.wait_for(13, timeout=WAIT)
    assert rig.store.count_events() == 12
    assert rig.store.count_failed() == 1
    assert rig.store.loaded_through() == 13


def test_async_append_refuses_when_the_loader_is_behind(tmp_path: Path) -> None:
    with make_rig(tmp_path, max_pending_events=5) as r:
        r.committer.start()  # the loader is not started: its backlog only grows

        async def append(n: int, fails: int = 0) -> int:
            return await r.committer.append(
                [event() for _ in range(n)], [failed() for _ in range(fails)]
            )

        assert asyncio.run(append(3)) == 3
        assert r.loader.backlog == 3
        with pytest.raises(LogUnavailable, match="behind"):
            asyncio.run(append(3))
        assert r.segments.last_offset == 3  # nothing of the refused request was written
        assert asyncio.run(append(2)) == 5  # exactly at the limit
        assert r.loader.backlog == 5
        with pytest.raises(LogUnavailable):
            asyncio.run(append(1))
        assert asyncio.run(append(0, fails=1)) == 6  # failed events do not count
        assert r.store.count_events() == 0

        # Once the loader has caught up (stop() drains it), requests are taken again.
        r.loader.start()
        r.loader.stop()
        assert r.loader.backlog == 0
        assert r.loader.loaded == 6
        assert r.store.loaded_through() == 6
        assert r.store.count_events() == 5
        assert asyncio.run(append(5)) == 11
        assert r.loader.backlog == 5


def test_async_append_after_stop_is_refused(rig: Rig) -> None:
    rig.committer.start()
    rig.committer.stop()

    async def main() -> int:
        return await rig.committer.append([event()])

    with pytest.raises(LogUnavailable, match="shutting down"):
        asyncio.run(main())


def test_a_failing_log_write_fails_the_request(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    rig.loader.start()
    rig.committer.start()

    def broken(items: object) -> int:
        raise OSError(28, "No space left on device")

    async def main() -> int:
        return await rig.committer.append([event()])

    with monkeypatch.context() as m:
        m.setattr(rig.segments, "append", broken)
        with pytest.raises(LogUnavailable, match="No space left"):
            asyncio.run(main())
    assert rig.committer.healthy is False
    assert rig.loader.backlog == 0
    assert asyncio.run(main()) == 1
    assert rig.committer.healthy is True
    assert rig.loader.wait_for(1, timeout=WAIT)
    assert "log commit failed" in caplog.text


def test_a_position_written_late_only_reloads_what_the_store_has(tmp_path: Path) -> None:
    """The loaded-through offset is written at most once a second; after a crash the
    loader reloads from the older position and finds nothing new there."""
    store = open_store(tmp_path / "s.duckdb")
    directory = tmp_path / "log"
    segments = SegmentLog(directory)
    loader = Loader(store, segments)
    committer = GroupCommitter(segments, loader)
    loader.start()
    committer.append_sync([event(id="a")])
    assert loader.wait_for(1, timeout=WAIT)  # the first load writes the position
    committer.append_sync([event(id="b")], [failed()])
    committer.append_sync([event(id="c")])
    assert loader.wait_for(4, timeout=WAIT)
    assert store.loaded_through() == 1  # not written again within the second
    # a crash: nothing stopped, the position stays behind
    segments.close()

    again = SegmentLog(directory, start_after=store.loaded_through())
    loads = Loads()
    try:
        assert again.last_offset == 4
        recovered = Loader(store, again, on_load=loads)
        assert recovered.recover() == 3
        assert loads.calls == [([], 4)]  # b, the failed one and c were there already
        assert stored(store) == [(1, "a"), (2, "b"), (4, "c")]
        assert store.count_failed() == 1
        assert store.loaded_through() == 4  # recovery writes it
    finally:
        again.close()
        loader.stop()
        store.close()
