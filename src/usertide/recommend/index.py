"""The session index the neighbourhood recommenders search, updated event by event.

Per session: its events so far, each distinct item with the position (1-based) of its
latest event in the session, and the time of its latest event. Per item: the sessions
that hold it (posting lists, numpy arrays grown by doubling, so a query reads them
without a copy). A new event is searchable as soon as it is learned.

A session's distinct items (first appearance first) and their latest positions live in
one run of two flat arrays (a slab): a session that outgrows its run moves to a new one
of twice the size at the end, and the slab is compacted when more than half of it is
abandoned runs. So :meth:`SessionIndex.gather` reads the items of hundreds of
neighbours with a few numpy operations, not a Python step per neighbour.

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
        self.latest: list[dict[int, int]] = []  # item -> its place in the session's run
        self.times = Growable(np.float64)
        self.distinct = Growable(np.float64)  # distinct items per session
        self.alive = Growable(np.bool_)
        self.postings: list[Growable] = []
        self.start = Growable(np.int64)  # where each session's run begins in the slab
        self.capacity: list[int] = []
        self.slab_items = Growable(np.int64)
        self.slab_positions = Growable(np.float64)
        self._abandoned = 0  # slab places no session uses any more
        self._dead = 0

    def __len__(self) -> int:
        return len(self.where)

    def learn(self, session_id: str, item: int, timestamp: float) -> None:
        session = self.where.get(session_id)
        if session is None:
            session = self._open(session_id, timestamp)
        self.lengths[session] += 1
        latest = self.latest[session]
        place = latest.get(item)
        if place is None:
            place = len(latest)
            if place == self.capacity[session]:
                self._move(session, max(4, 2 * place))
            latest[item] = place
            self.slab_items.data[self.start.data[session] + place] = item
            while len(self.postings) <= item:
                self.postings.append(Growable(np.int64))
            self.postings[item].append(session)
            self.distinct.data[session] += 1
        self.slab_positions.data[self.start.data[session] + place] = self.lengths[session]
        if timestamp > self.times.data[session]:
            self.times.data[session] = timestamp
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
        self.start.append(0)
        self.capacity.append(0)
        return session

    def _move(self, session: int, capacity: int) -> None:
        """Give the session a run of ``capacity`` places at the slab's end (its items
        copied there), compacting the slab first when most of it is abandoned."""
        if self._abandoned > self.slab_items.size // 2:
            self._compact()
        old, used = int(self.start.data[session]), len(self.latest[session])
        new = self.slab_items.reserve(capacity)
        self.slab_positions.reserve(capacity)
        self.slab_items.data[new : new + used] = self.slab_items.data[old : old + used]
        self.slab_positions.data[new : new + used] = self.slab_positions.data[old : old + used]
        self._abandoned += self.capacity[session]
        self.start.data[session], self.capacity[session] = new, capacity

    def _compact(self) -> None:
        """Every session's run back to back, each exactly as long as its items."""
        sessions = np.arange(len(self.ids), dtype=np.int64)
        counts = np.array([len(latest) for latest in self.latest], dtype=np.int64)
        items, positions, _ = self.gather(sessions, counts)
        self.slab_items = Growable(np.int64, items)
        self.slab_positions = Growable(np.float64, positions)
        starts = np.zeros(len(counts), np.int64)
        np.cumsum(counts[:-1], out=starts[1:])
        self.start = Growable(np.int64, starts)
        self.capacity = counts.tolist()
        self._abandoned = 0

    def forget(self, session_id: str) -> None:
        session = self.where.pop(session_id, None)
        if session is None:
            return
        self.alive.data[session] = False
        self.latest[session] = {}
        self._abandoned += self.capacity[session]
        self.capacity[session] = 0
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
            (self.ids[s], self.lengths[s], self.positions_of(s), float(self.times.data[s]))
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
        count = len(latest)
        capacity = max(4, count)
        begin = self.slab_items.reserve(capacity)
        self.slab_positions.reserve(capacity)
        self.start.data[session], self.capacity[session] = begin, capacity
        self.slab_items.data[begin : begin + count] = list(latest)
        self.slab_positions.data[begin : begin + count] = list(latest.values())
        self.latest[session] = {item: place for place, item in enumerate(latest)}
        self.distinct.data[session] = count
        for item in latest:
            while len(self.postings) <= item:
                self.postings.append(Growable(np.int64))
            self.postings[item].append(session)

    def positions_of(self, session: int) -> dict[int, int]:
        """A session's distinct items (first appearance first) -> their latest positions."""
        begin, count = int(self.start.data[session]), len(self.latest[session])
        return dict(
            zip(
                self.slab_items.data[begin : begin + count].tolist(),
                self.slab_positions.data[begin : begin + count].astype(np.int64).tolist(),
                strict=True,
            )
        )

    def gather(
        self, sessions: IntArray, counts: IntArray | None = None
    ) -> tuple[IntArray, FloatArray, IntArray]:
        """The distinct items of ``sessions`` (session after session, first appearance
        first), their latest positions, and the index in ``sessions`` of each one's owner."""
        if counts is None:
            counts = self.distinct.view()[sessions].astype(np.int64)
        total = int(counts.sum())
        owner = np.repeat(np.arange(len(sessions), dtype=np.int64), counts)
        begins = np.zeros(len(sessions), np.int64)
        np.cumsum(counts[:-1], out=begins[1:])
        where = np.arange(total, dtype=np.int64) + (self.start.view()[sessions] - begins)[owner]
        return self.slab_items.data[where], self.slab_positions.data[where], owner

    def sessions_with(self, item: int) -> IntArray:
        if item >= len(self.postings):
            return np.zeros(0, np.int64)
        postings: IntArray = self.postings[item].view()
        return postings

    def dump(self) -> IndexState:
        live = sorted(self.where.values())
        items, positions, _ = self.gather(np.array(live, dtype=np.int64))
        return IndexState(
            [self.ids[s] for s in live],
            pack([self.lengths[s] for s in live], "<i8"),
            pack(self.times.view()[live], "<f8"),
            pack([len(self.latest[s]) for s in live], "<i8"),
            pack(items, "<i8"),
            pack(positions, "<i8"),
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
