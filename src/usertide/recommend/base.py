"""The recommendation extension point: a recommender learns events one at a time and
ranks items for the session in progress.

A recommender is a global model (not per user). It learns ``(session, item, time)``
events in stream order, incrementally and deterministically: the same ordered stream
gives the same state, and the same bytes. It answers for a session given as its items so
far, most recent last, ranking every item it has learned (no sampling):

1. the items it has evidence for, scores normalised so the best is 1.0, ties broken by
   popularity (events learned) and then by first appearance;
2. when those are fewer than ``n``, the most popular other items, score 0.0: the
   cold-start fallback, which is also all an empty or unknown session gets.

Excluded and disallowed items are never returned. State is data (``to_bytes``: msgpack
via msgspec, never pickle); :meth:`Recommender.from_bytes` reads it back and refuses
anything else with ``ValueError``. Every implementation passes the contract suite in
``tests/recommend/test_contract.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, ClassVar, Final, Self

import msgspec
import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Scores = tuple[IntArray, FloatArray]  # candidate items (distinct) and their scores (> 0)
EMPTY: Final[Scores] = (np.zeros(0, np.int64), np.zeros(0, np.float64))

FORMAT: Final = "usertide.recommender"
VERSION: Final = 1


class Growable:
    """A numpy array that grows by doubling: appends are amortised O(1), and ``view`` is
    the filled part, without a copy."""

    __slots__ = ("data", "size")

    def __init__(self, dtype: type[Any], values: npt.ArrayLike = ()) -> None:
        initial = np.asarray(values, dtype=dtype)
        self.data: npt.NDArray[Any] = np.zeros(max(4, len(initial)), dtype=dtype)
        self.data[: len(initial)] = initial
        self.size = len(initial)

    def append(self, value: Any) -> None:
        place = self.reserve(1)  # first: it may replace self.data
        self.data[place] = value

    def reserve(self, places: int) -> int:
        """``places`` more at the end (zeros, unless reserved before): the first one's
        index; the array at least doubles when it must grow."""
        begin = self.size
        if begin + places > len(self.data):
            grown = np.zeros(max(2 * len(self.data), begin + places), dtype=self.data.dtype)
            grown[:begin] = self.data[:begin]
            self.data = grown
        self.size = begin + places
        return begin

    def view(self) -> npt.NDArray[Any]:
        return self.data[: self.size]


def pack(values: npt.ArrayLike, dtype: str) -> bytes:
    """Numbers as little-endian bytes (``dtype`` is ``"<i8"`` or ``"<f8"``)."""
    return np.ascontiguousarray(values, dtype=dtype).tobytes()


def unpack(data: bytes, dtype: str, what: str, length: int | None = None) -> npt.NDArray[Any]:
    size = np.dtype(dtype).itemsize
    if len(data) % size or (length is not None and len(data) != length * size):
        raise ValueError(f"{what}: {len(data)} bytes is not {length or 'whole'} x {dtype}")
    return np.frombuffer(data, dtype=dtype).astype(dtype[1:])


def best_first(
    primary: FloatArray, secondary: FloatArray, tertiary: FloatArray, k: int
) -> IntArray:
    """Positions of the ``k`` largest entries by (primary, secondary, tertiary), best
    first. Linear in the entries plus a sort of those tied at the cut (deterministic)."""
    n = len(primary)
    if n > k:
        cut = np.partition(primary, n - k)[n - k]
        pool: IntArray = np.flatnonzero(primary >= cut)
    else:
        pool = np.arange(n)
    order = np.lexsort((tertiary[pool], secondary[pool], primary[pool]))[::-1][:k]
    out: IntArray = pool[order]
    return out


class CatalogueState(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    ids: list[str]
    counts: bytes  # <i8 per item
    clock: float
    events: int


class Catalogue:
    """The items learned so far, numbered from 0 in order of first appearance, with their
    event counts (popularity) and the latest event time learned (the recommenders'
    clock: time decays are measured from it, never from the wall clock)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self._counts = Growable(np.int64)
        self.clock = 0.0
        self.events = 0

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def counts(self) -> IntArray:
        view: IntArray = self._counts.view()
        return view

    def learn(self, item_id: str, timestamp: float) -> int:
        item = self.index.get(item_id)
        if item is None:
            item = len(self.ids)
            self.ids.append(item_id)
            self.index[item_id] = item
            self._counts.append(0)
        self._counts.data[item] += 1
        if self.events == 0 or timestamp > self.clock:
            self.clock = timestamp
        self.events += 1
        return item

    def dump(self) -> CatalogueState:
        return CatalogueState(self.ids, pack(self.counts, "<i8"), self.clock, self.events)

    @classmethod
    def load(cls, state: CatalogueState) -> Catalogue:
        out = cls()
        counts = unpack(state.counts, "<i8", "catalogue counts", len(state.ids))
        if len(set(state.ids)) != len(state.ids) or (counts < 1).any():
            raise ValueError("catalogue: repeated items or counts below 1")
        if int(counts.sum()) != state.events:
            raise ValueError("catalogue: counts do not add up to the events")
        out.ids = list(state.ids)
        out.index = {item: i for i, item in enumerate(out.ids)}
        out._counts = Growable(np.int64, counts)
        out.clock, out.events = state.clock, state.events
        return out


class _Envelope(msgspec.Struct, forbid_unknown_fields=True):
    format: str
    version: int
    name: str
    settings: msgspec.Raw
    catalogue: CatalogueState
    state: msgspec.Raw


class Recommender(ABC):
    """Learns events; ranks items for a session (see the module docstring)."""

    name: ClassVar[str]
    _classes: ClassVar[dict[str, type[Recommender]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            Recommender._classes[cls.name] = cls

    def __init__(self) -> None:
        self.catalogue = Catalogue()

    # -- learning ------------------------------------------------------------------

    def learn(self, session_id: str, item_id: str, timestamp: float) -> None:
        """One event: ``item_id`` was seen in ``session_id`` at ``timestamp`` (seconds)."""
        self._learn(session_id, self.catalogue.learn(item_id, timestamp), timestamp)

    def fit(self, events: Iterable[tuple[str, str, float]]) -> Self:
        """Learn many ``(session_id, item_id, timestamp)`` events, in order."""
        for session_id, item_id, timestamp in events:
            self.learn(session_id, item_id, timestamp)
        return self

    def forget_session(self, session_id: str) -> None:
        """Drop what is kept about one session (its items, for neighbours or rules);
        statistics already aggregated over sessions (counts, rules) stay."""
        return None

    def items(self) -> int:
        """The size of the catalogue: every item learned so far."""
        return len(self.catalogue)

    @abstractmethod
    def _learn(self, session_id: str, item: int, timestamp: float) -> None:
        """One event, its item already numbered by the catalogue."""

    @abstractmethod
    def _scores(self, session: Sequence[int], session_id: str | None) -> Scores:
        """The items the session gives evidence for, with positive scores (any scale).
        ``session`` holds catalogue numbers, most recent last; ``session_id``, when the
        session is also being learned, is skipped as its own neighbour."""

    # -- answering -----------------------------------------------------------------

    def recommend(
        self,
        session: Sequence[str],
        n: int = 20,
        exclude: Collection[str] = (),
        allowed: Callable[[str], bool] | None = None,
        *,
        session_id: str | None = None,
    ) -> list[tuple[str, float]]:
        """Up to ``n`` (item, score) for what comes after ``session`` (most recent
        last), best first; never an item in ``exclude`` or one ``allowed`` refuses."""
        if n <= 0:
            return []
        index = self.catalogue.index
        skip = {index[item] for item in exclude if item in index}
        items, scores = self._scores([index[i] for i in session if i in index], session_id)
        if len(scores):
            scores = scores / scores.max()
        picked = self._pick(items, scores, n, skip, allowed)
        if len(picked) < n:
            counts = self.catalogue.counts.astype(np.float64)
            taken = skip | {item for item, _ in picked}
            fallback = self._pick(np.arange(len(counts)), counts, n - len(picked), taken, allowed)
            picked += [(item, 0.0) for item, _ in fallback]
        return [(self.catalogue.ids[item], score) for item, score in picked]

    def similar(
        self,
        item_id: str,
        n: int = 20,
        exclude: Collection[str] = (),
        allowed: Callable[[str], bool] | None = None,
    ) -> list[tuple[str, float]]:
        """Items to show beside ``item_id``: what follows a session of that one item."""
        return self.recommend([item_id], n, {item_id, *exclude}, allowed)

    def rank(
        self, session: Sequence[str], items: Sequence[str], *, session_id: str | None = None
    ) -> list[str]:
        """``items`` in the order ``recommend`` would rank them after ``session``; items
        never learned come last, in the order given."""
        index = self.catalogue.index
        candidates, scores = self._scores([index[i] for i in session if i in index], session_id)
        dense = np.zeros(len(self.catalogue))
        if len(scores):
            dense[candidates] = scores / scores.max()  # exactly as recommend compares them
        counts = self.catalogue.counts
        known = [item for item in items if item in index]
        known.sort(key=lambda item: (-dense[index[item]], -counts[index[item]], index[item]))
        return known + [item for item in items if item not in index]

    def _pick(
        self,
        items: IntArray,
        scores: FloatArray,
        n: int,
        skip: Collection[int],
        allowed: Callable[[str], bool] | None,
    ) -> list[tuple[int, float]]:
        """The best ``n`` of the candidates not skipped and allowed, best first."""
        counts = self.catalogue.counts[items].astype(np.float64)
        order_of_appearance = -items.astype(np.float64)
        take = n + len(skip)
        while True:
            picked: list[tuple[int, float]] = []
            order = best_first(scores, counts, order_of_appearance, take)
            for position in order.tolist():
                item = int(items[position])
                if item in skip or (allowed is not None and not allowed(self.catalogue.ids[item])):
                    continue
                picked.append((item, float(scores[position])))
                if len(picked) == n:
                    return picked
            if len(order) == len(items):
                return picked
            take *= 4  # the filter refused too many: look further down

    # -- snapshots -----------------------------------------------------------------

    @abstractmethod
    def settings(self) -> Any:
        """The configuration, as plain data (what ``_configured`` builds from)."""

    @classmethod
    @abstractmethod
    def _configured(cls, settings: Any) -> Self:
        """A new, empty recommender from ``settings`` (ValueError when they are wrong)."""

    @abstractmethod
    def _state(self) -> Any:
        """Everything learned beyond the catalogue, as msgpack-encodable data."""

    @abstractmethod
    def _restore(self, state: msgspec.Raw) -> None:
        """Load what ``_state`` wrote; ValueError on anything else."""

    def to_bytes(self) -> bytes:
        """A safe, self-describing encoding: configuration and state, as data only."""
        return msgspec.msgpack.encode(
            {
                "format": FORMAT,
                "version": VERSION,
                "name": self.name,
                "settings": self.settings(),
                "catalogue": self.catalogue.dump(),
                "state": self._state(),
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Recommender:
        """The recommender ``to_bytes`` wrote (of this class, when called on a subclass)."""
        try:
            envelope = msgspec.msgpack.decode(data, type=_Envelope)
        except msgspec.MsgspecError as exc:
            raise ValueError(f"not a recommender snapshot: {exc}") from exc
        if envelope.format != FORMAT or envelope.version != VERSION:
            raise ValueError(f"not a recommender snapshot: {envelope.format} {envelope.version}")
        klass = Recommender._classes.get(envelope.name)
        if klass is None or not issubclass(klass, cls):
            raise ValueError(f"not a {cls.__name__} snapshot: {envelope.name!r}")
        try:
            out = klass._configured(msgspec.msgpack.decode(envelope.settings))
            catalogue = Catalogue.load(envelope.catalogue)
            out._adopt(catalogue)
            out._restore(envelope.state)
        except (msgspec.MsgspecError, TypeError, IndexError) as exc:
            raise ValueError(f"not a {envelope.name} snapshot: {exc}") from exc
        return out

    def _adopt(self, catalogue: Catalogue) -> None:
        """Use ``catalogue`` (a loaded one, or a blend's shared one)."""
        self.catalogue = catalogue


def decode(raw: msgspec.Raw, kind: type[Any]) -> Any:
    """A ``_state`` read back as ``kind`` (a msgspec Struct), type-checked."""
    return msgspec.msgpack.decode(raw, type=kind)


def configured(settings: Any, kind: type[Any]) -> Any:
    """Settings read back as ``kind`` (a msgspec Struct whose ``__post_init__`` checks them)."""
    return msgspec.convert(settings, kind)
