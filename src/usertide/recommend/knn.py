"""Session-based k-nearest neighbours over the incremental session index (``index.py``).

For the current session (its items, most recent last), every learned session sharing an
item is a candidate; the ``sample_size`` most recent candidates (by latest event) are
compared with it, the ``k`` most similar are its neighbours, and each neighbour's items
score by the neighbour's similarity. The variants differ in the weights:

- ``vsknn``, V-SKNN (session-rec's ``VMContextKNN``): the current session's items are
  weighted by position (``quadratic``: ``(p/L)**2``, ``div``: ``p/L``, ...), similarity
  is their weighted overlap divided by the distinct items (``vec``); a neighbour counts
  less when it matched only older items of the session (``weighting_score``: ``1/d`` for
  the ``d``-th most recent); an item's score is multiplied by ``1 + idf_weighting * idf``
  with ``idf = log(sessions / events of the item)`` (never below 0).
- ``stan``, STAN (Garg et al., SIGIR 2019): position weights ``exp((p - L)/lambda_spw)``,
  cosine similarity, times ``exp(-age/lambda_snh)`` for the neighbour's age (days before
  the latest event learned), and each item of a neighbour weighted by its distance
  there from the neighbour's latest item shared with the session,
  ``exp(-|q - q*|/lambda_inh)``.
- ``vstan``, V-STAN (Ludewig et al., UMUAI 2021): STAN plus V-SKNN's ideas, a neighbour
  weighted ``exp((p_match - L)/lambda_ipw)`` by how recent its match in the session is,
  and the idf factor ``1 + lambda_idf * idf``.

``remind`` keeps the session's own items as candidates (a shopper often returns to an
item). A session that is also being learned (``session_id``) is never its own neighbour.
Ties go to the more recent session, then the later-opened one: results are deterministic.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal, Self

import msgspec
import numpy as np
import numpy.typing as npt

from usertide.recommend.base import (
    EMPTY,
    Catalogue,
    FloatArray,
    IntArray,
    Recommender,
    Scores,
    best_first,
    configured,
    decode,
)
from usertide.recommend.index import IndexState, SessionIndex

Weighting = Literal["same", "div", "linear", "log", "quadratic"]
DAY: Final = 86_400.0

# V-SKNN's weight of the current session's item at position p (1-based) of L events.
POSITION_WEIGHTS: Final[dict[str, Callable[[FloatArray, int], FloatArray]]] = {
    "same": lambda p, length: np.ones_like(p),
    "div": lambda p, length: p / length,
    "linear": lambda p, length: np.maximum(0.0, 1.0 - 0.1 * (length - p)),
    "log": lambda p, length: 1.0 / np.log10(length - p + 1.7),
    "quadratic": lambda p, length: (p / length) ** 2,
}
# V-SKNN's weight of a neighbour whose most recent match is the d-th latest item (d >= 1).
MATCH_WEIGHTS: Final[dict[str, Callable[[FloatArray], FloatArray]]] = {
    "same": lambda d: np.ones_like(d),
    "div": lambda d: 1.0 / d,
    "linear": lambda d: np.maximum(0.0, 1.0 - 0.1 * d),
    "log": lambda d: 1.0 / np.log10(d + 1.7),
    "quadratic": lambda d: 1.0 / (d * d),
}


def _check(k: int, sample_size: int, max_sessions: int) -> None:
    if k < 1 or sample_size < 1 or max_sessions < 1:
        raise ValueError("k, sample_size and max_sessions must be at least 1")


class VSKNNConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Defaults: session-rec's configuration for this data (``example_next.yml``)."""

    k: int = 500
    sample_size: int = 5000
    weighting: Weighting = "quadratic"
    weighting_score: Weighting = "div"
    idf_weighting: float = 5.0  # 0: none
    remind: bool = True
    max_sessions: int = 1_000_000

    def __post_init__(self) -> None:
        _check(self.k, self.sample_size, self.max_sessions)
        if self.idf_weighting < 0:
            raise ValueError("idf_weighting must be >= 0")


class STANConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Defaults: session-rec's ``STAN`` (no ``lambda_ipw``/``lambda_idf``: plain STAN)."""

    k: int = 500
    sample_size: int = 5000
    lambda_spw: float = 1.02  # positions in the current session
    lambda_snh: float | None = 5.0  # days: the neighbour's age
    lambda_inh: float | None = 2.05  # positions in the neighbour
    lambda_ipw: float | None = None  # V-STAN: the position of the neighbour's match
    lambda_idf: float | None = None  # V-STAN: the idf factor
    remind: bool = True
    max_sessions: int = 1_000_000

    def __post_init__(self) -> None:
        _check(self.k, self.sample_size, self.max_sessions)
        lambdas = (self.lambda_snh, self.lambda_inh, self.lambda_ipw)
        if not self.lambda_spw > 0 or any(x is not None and not x > 0 for x in lambdas):
            raise ValueError("the lambdas must be positive (or None)")
        if self.lambda_idf is not None and self.lambda_idf < 0:
            raise ValueError("lambda_idf must be >= 0")


class _Neighbourhood(Recommender):
    config: VSKNNConfig | STANConfig

    def __init__(self, config: VSKNNConfig | STANConfig) -> None:
        super().__init__()
        self.config = config
        self.index = SessionIndex(config.max_sessions)
        self._idf_key = (-1, -1)
        self._idf: FloatArray = np.zeros(0)

    def _learn(self, session_id: str, item: int, timestamp: float) -> None:
        self.index.learn(session_id, item, timestamp)

    def forget_session(self, session_id: str) -> None:
        self.index.forget(session_id)

    # the weights of each variant
    @abstractmethod
    def _query_weights(self, positions: FloatArray, length: int) -> FloatArray:
        """The weight of each distinct item of the session, at its latest position."""

    @abstractmethod
    def _similarity(self, dot: FloatArray, sessions: IntArray, query: FloatArray) -> FloatArray:
        """Each candidate's similarity from ``dot``, its summed query weights."""

    def _match_weights(self, match: FloatArray, length: int) -> FloatArray | None:
        return None

    def _entry_weights(
        self, items: IntArray, positions: FloatArray, owner: IntArray, query: IntArray
    ) -> FloatArray | None:
        return None

    def _item_factor(self) -> FloatArray | None:
        return None

    def _scores(self, session: Sequence[int], session_id: str | None) -> Scores:
        if not session:
            return EMPTY
        latest = {item: position for position, item in enumerate(session, start=1)}
        query = np.fromiter(latest.keys(), np.int64, len(latest))
        positions = np.fromiter(latest.values(), np.float64, len(latest))
        weights = self._query_weights(positions, len(session))
        postings = [self.index.sessions_with(item) for item in query.tolist()]
        sizes = [len(p) for p in postings]
        found = np.concatenate(postings)
        entry_weight, entry_position = np.repeat(weights, sizes), np.repeat(positions, sizes)
        own = -1 if session_id is None else self.index.where.get(session_id, -1)
        keep = self.index.alive.view()[found] & (found != own)
        if not keep.all():
            found, entry_weight, entry_position = (
                found[keep], entry_weight[keep], entry_position[keep]
            )  # fmt: skip
        if not len(found):
            return EMPTY
        sessions, inverse = np.unique(found, return_inverse=True)
        dot: FloatArray = np.bincount(inverse, entry_weight, len(sessions)).astype(np.float64)
        match = np.zeros(len(sessions))
        np.maximum.at(match, inverse, entry_position)  # the latest matched position
        times = self.index.times.view()[sessions]
        order = sessions.astype(np.float64)
        if len(sessions) > self.config.sample_size:  # the most recent candidates
            sample = best_first(times, order, order, self.config.sample_size)
            sessions, dot, match, times, order = (
                sessions[sample], dot[sample], match[sample], times[sample], order[sample]
            )  # fmt: skip
        similarity = self._similarity(dot, sessions, weights)
        top = best_first(similarity, times, order, self.config.k)
        top = top[similarity[top] > 0]
        neighbours = sessions[top]
        strength = similarity[top]
        match_weights = self._match_weights(match[top], len(session))
        if match_weights is not None:
            strength = strength * match_weights
        if not len(neighbours):
            return EMPTY
        items, item_positions, owner = self.index.gather(neighbours)
        weight = strength[owner]
        extra = self._entry_weights(items, item_positions, owner, query)
        if extra is not None:
            weight = weight * extra
        scores: FloatArray = np.bincount(items, weight, len(self.catalogue)).astype(np.float64)
        factor = self._item_factor()
        if factor is not None:
            scores *= factor
        if not self.config.remind:
            scores[query] = 0.0
        candidates = np.flatnonzero(scores > 0)
        return candidates, scores[candidates]

    def _idf_factor(self, strength: float) -> FloatArray:
        """``1 + strength * idf``, idf = ``log(sessions / events of the item)``, cached
        until either changes."""
        key = (self.catalogue.events, len(self.index))
        if key != self._idf_key:
            counts = self.catalogue.counts.astype(np.float64)
            # never below 0: an item with more events than there are sessions (which
            # session-rec's formula would make negative) is merely uninformative
            self._idf = np.maximum(0.0, np.log(max(1, len(self.index)) / counts))
            self._idf_key = key
        factor: FloatArray = 1.0 + strength * self._idf
        return factor

    def settings(self) -> Any:
        return msgspec.to_builtins(self.config)

    def _state(self) -> Any:
        return self.index.dump()

    def _restore(self, state: msgspec.Raw) -> None:
        self.index.load(decode(state, IndexState), len(self.catalogue))

    def _adopt(self, catalogue: Catalogue) -> None:
        super()._adopt(catalogue)
        self._idf_key = (-1, -1)


class VSKNN(_Neighbourhood):
    name = "vsknn"
    config: VSKNNConfig

    def __init__(self, config: VSKNNConfig | None = None) -> None:
        super().__init__(config or VSKNNConfig())

    @classmethod
    def _configured(cls, settings: Any) -> Self:
        return cls(configured(settings, VSKNNConfig))

    def _query_weights(self, positions: FloatArray, length: int) -> FloatArray:
        return POSITION_WEIGHTS[self.config.weighting](positions, length)

    def _similarity(self, dot: FloatArray, sessions: IntArray, query: FloatArray) -> FloatArray:
        out: FloatArray = dot / len(query)
        return out

    def _match_weights(self, match: FloatArray, length: int) -> FloatArray:
        return MATCH_WEIGHTS[self.config.weighting_score](length - match + 1.0)

    def _item_factor(self) -> FloatArray | None:
        idf = self.config.idf_weighting
        return self._idf_factor(idf) if idf else None


class STAN(_Neighbourhood):
    name = "stan"
    config: STANConfig

    def __init__(self, config: STANConfig | None = None) -> None:
        super().__init__(config or self.default_config())

    @classmethod
    def default_config(cls) -> STANConfig:
        return STANConfig()

    @classmethod
    def _configured(cls, settings: Any) -> Self:
        return cls(configured(settings, STANConfig))

    def _query_weights(self, positions: FloatArray, length: int) -> FloatArray:
        out: FloatArray = np.exp((positions - length) / self.config.lambda_spw)
        return out

    def _similarity(self, dot: FloatArray, sessions: IntArray, query: FloatArray) -> FloatArray:
        distinct = self.index.distinct.view()[sessions]
        out: FloatArray = dot / (math.sqrt(float(query @ query)) * np.sqrt(distinct))
        if self.config.lambda_snh is not None:
            age = self.catalogue.clock - self.index.times.view()[sessions]
            out *= np.exp(-age / (self.config.lambda_snh * DAY))
        return out

    def _match_weights(self, match: FloatArray, length: int) -> FloatArray | None:
        if self.config.lambda_ipw is None:
            return None
        out: FloatArray = np.exp((match - length) / self.config.lambda_ipw)
        return out

    def _entry_weights(
        self, items: IntArray, positions: FloatArray, owner: IntArray, query: IntArray
    ) -> FloatArray | None:
        if self.config.lambda_inh is None:
            return None
        in_query: npt.NDArray[np.bool_] = np.zeros(len(self.catalogue), np.bool_)
        in_query[query] = True
        shared = in_query[items]
        anchor = np.zeros(int(owner[-1]) + 1)
        np.maximum.at(anchor, owner[shared], positions[shared])
        out: FloatArray = np.exp(-np.abs(positions - anchor[owner]) / self.config.lambda_inh)
        return out

    def _item_factor(self) -> FloatArray | None:
        idf = self.config.lambda_idf
        return self._idf_factor(idf) if idf else None


class VSTAN(STAN):
    name = "vstan"

    @classmethod
    def default_config(cls) -> STANConfig:
        """session-rec's ``VSKNN_STAN`` defaults."""
        return STANConfig(lambda_ipw=1.02, lambda_idf=5.0)
