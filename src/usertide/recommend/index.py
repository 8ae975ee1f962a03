"""The session index the neighbourhood recommenders search, updated event by event.

Per session: its events so far, each distinct item with the position (1-based) of its
latest event in the session, and the time of its latest event. Per item: the sessions
that hold it (posting lists, numpy arrays grown by doubling, so a query reads them
without a copy). A new event is searchable as soon as it is learned.

Memory is bounded: beyond ``max_sessions`` (plus an eighth, so that eviction is batched)
the oldest sessions by latest event are dropped and the index rebuilt from the rest.
Forgotten sessions are masked at once and dropped at the next rebuild.
"""

from __future__ import annotations

import msgspec
import numpy as np

from usertide.recommend.base import FloatArray, Growable, IntArray, pack, unpack


class IndexState(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    sessions: list[str]  # live sessions in index order
    lengths: bytes  # <i8, events per session
    times: bytes  # <f8, latest event per session
    distinct: bytes  # <i8, distinct items per session
    items: bytes  # <i8, those items (first appearance first), session after session
    positions: bytes  # <i8, the position of each one's latest event in its session


class SessionIndex:
    def __init__(self, max_sessions: int) -> None:
        self.max_sessions = max_sessions
        self._reset()

    def _reset(self) -> None:
        self.ids: list[str] = []
        self.where: dict[str, int] = {}
        self.lengths: list[int] = []
        self.latest: list[dict[int, int]] = []  # item -> position of its latest event
        self.times = Growable(np.float64)
        self.distinct = Growable(np.float64)  # distinct items per session
        self.alive = Growable(np.bool_)
        self.postings: list[Growable] = []
        self._arrays: list[tuple[IntArray, FloatArray] | None] = []
        self._dead = 0

    def __len__(self) -> int:
        return len(self.where)

    def learn(self, session_id: str, item: int, timestamp: float) -> None:
        session = self.where.get(session_id)
        if session is None:
            session = self._open(session_id, timestamp)
        self.lengths[session] += 1
        latest = self.latest[session]
        if item not in latest:
            while len(self.postings) <= item:
                self.postings.append(Growable(np.int64))
            self.postings[item].append(session)
            self.distinct.data[session] += 1
        latest[item] = self.lengths[session]
        if timestamp > self.times.data[session]:
            self.times.data[session] = timestamp
        self._arrays[session] = None
        if len(self.where) > self.max_sessions + self.max_sessions // 8:
            self._evict()

    def _open(self, session_id: str, timestamp: float) -> int:
        session = len(self.ids)
        self.ids.append(session_id)
        self.where[session_id] = session
        self.lengths.append(0)
        self.latest.append({})
        self.times.append(timestamp)
        self.distinct.append(0.0)
        self.alive.append(True)
        self._arrays.append(None)
        return session

    def forget(self, session_id: str) -> None:
        session = self.where.pop(session_id, None)
        if session is None:
            return
        self.alive.data[session] = False
        self.latest[session] = {}
        self._arrays[session] = None
        self._dead += 1
        if self._dead > len(self.where):
            self._rebuild(list(self.where.values()))

    def _evict(self) -> None:
        live = np.array(sorted(self.where.values()), dtype=np.int64)
        times = self.times.view()[live]
        # the most recent sessions by latest event; ties keep the later-opened one
        keep = np.lexsort((live, times))[-self.max_sessions :]
        self._rebuild(sorted(live[keep].tolist()))

    def _rebuild(self, keep: list[int]) -> None:
        """The index of the ``keep`` sessions alone, in their order (numbers close up)."""
        kept = [
            (self.ids[s], self.lengths[s], self.latest[s], float(self.times.data[s]))
            for s in sorted(keep)
        ]
        self._reset()
        for session in kept:
            self._restore_session(*session)

    def _restore_session(
        self, session_id: str, length: int, latest: dict[int, int], timestamp: float
    ) -> None:
        session = self._open(session_id, timestamp)
        self.lengths[session] = length
        self.latest[session] = dict(latest)
        self.distinct.data[session] = len(latest)
        for item in latest:
            while len(self.postings) <= item:
                self.postings.append(Growable(np.int64))
            self.postings[item].append(session)

    def arrays(self, session: int) -> tuple[IntArray, FloatArray]:
        """A session's distinct items (first appearance first) and their latest positions."""
        cached = self._arrays[session]
        if cached is None:
            latest = self.latest[session]
            cached = (
                np.fromiter(latest.keys(), np.int64, len(latest)),
                np.fromiter(latest.values(), np.float64, len(latest)),
            )
            self._arrays[session] = cached
        return cached

    def sessions_with(self, item: int) -> IntArray:
        if item >= len(self.postings):
            return np.zeros(0, np.int64)
        postings: IntArray = self.postings[item].view()
        return postings

    def dump(self) -> IndexState:
        live = sorted(self.where.values())
        return IndexState(
            [self.ids[s] for s in live],
            pack([self.lengths[s] for s in live], "<i8"),
            pack(self.times.view()[live], "<f8"),
            pack([len(self.latest[s]) for s in live], "<i8"),
            pack([item for s in live for item in self.latest[s]], "<i8"),
            pack([p for s in live for p in self.latest[s].values()], "<i8"),
        )

    def load(self, state: IndexState, items: int) -> None:
        n = len(state.sessions)
        lengths = unpack(state.lengths, "<i8", "session lengths", n).tolist()
        times = unpack(state.times, "<f8", "session times", n).tolist()
        distinct = unpack(state.distinct, "<i8", "distinct items", n)
        flat = unpack(state.items, "<i8", "session items")
        positions = unpack(state.positions, "<i8", "item positions", len(flat))
        if len(set(state.sessions)) != n or int(distinct.sum()) != len(flat):
            raise ValueError("session index: repeated sessions or bad item counts")
        if len(flat) and (flat.min() < 0 or flat.max() >= items or positions.min() < 1):
            raise ValueError("session index: items outside the catalogue or bad positions")
        self._reset()
        start = 0
        for session_id, length, timestamp, count in zip(
            state.sessions, lengths, times, distinct.tolist(), strict=True
        ):
            latest = dict(
                zip(
                    flat[start : start + count].tolist(),
                    positions[start : start + count].tolist(),
                    strict=True,
                )
            )
            if len(latest) != count or max(latest.values(), default=0) > length:
                raise ValueError(f"session index: session {session_id!r} is inconsistent")
            self._restore_session(session_id, length, latest, timestamp)
            start += count
