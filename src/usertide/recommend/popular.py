"""Popularity and trending: the same answer for every session (the cold-start fallback).

``popular`` ranks items by the events learned about them. ``trending`` ranks by a
time-decayed count in event time: each event weighs ``2 ** -(age / half_life)``, its age
measured from the latest event learned, so a replay of the same stream gives the same
ranking whatever the wall clock says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Self

import msgspec
import numpy as np

from usertide.recommend.base import (
    EMPTY,
    Growable,
    Recommender,
    Scores,
    configured,
    decode,
    pack,
    unpack,
)

# Weights are kept relative to a reference time; moved forward when they would overflow.
_RESCALE_HALF_LIVES: Final = 256.0


class Popular(Recommender):
    name = "popular"

    def _learn(self, session_id: str, item: int, timestamp: float) -> None:
        pass  # the catalogue counts the events

    def _scores(self, session: Sequence[int], session_id: str | None) -> Scores:
        counts = self.catalogue.counts
        return np.arange(len(counts)), counts.astype(np.float64)

    def settings(self) -> Any:
        return {}

    @classmethod
    def _configured(cls, settings: Any) -> Self:
        if settings != {}:
            raise ValueError(f"popular takes no settings: {settings!r}")
        return cls()

    def _state(self) -> Any:
        return None

    def _restore(self, state: msgspec.Raw) -> None:
        decode(state, type(None))


class TrendingConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    half_life_hours: float = 6.0

    def __post_init__(self) -> None:
        if not self.half_life_hours > 0:
            raise ValueError("half_life_hours must be positive")


class _TrendingState(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    weights: bytes  # <f8 per item, relative to the reference time
    reference: float


class Trending(Recommender):
    name = "trending"

    def __init__(self, config: TrendingConfig | None = None) -> None:
        super().__init__()
        self.config = config or TrendingConfig()
        self._half_life = self.config.half_life_hours * 3600.0
        self._weights = Growable(np.float64)
        self._reference: float | None = None

    def _learn(self, session_id: str, item: int, timestamp: float) -> None:
        if self._reference is None:
            self._reference = timestamp
        elif (timestamp - self._reference) / self._half_life > _RESCALE_HALF_LIVES:
            weights = self._weights.view()
            weights *= 2.0 ** (-(timestamp - self._reference) / self._half_life)
            self._reference = timestamp
        while self._weights.size <= item:
            self._weights.append(0.0)
        self._weights.data[item] += 2.0 ** ((timestamp - self._reference) / self._half_life)

    def _scores(self, session: Sequence[int], session_id: str | None) -> Scores:
        weights = self._weights.view()
        if not len(weights):
            return EMPTY
        positive = np.flatnonzero(weights > 0)
        return positive, weights[positive].copy()

    def settings(self) -> Any:
        return msgspec.to_builtins(self.config)

    @classmethod
    def _configured(cls, settings: Any) -> Self:
        return cls(configured(settings, TrendingConfig))

    def _state(self) -> Any:
        return _TrendingState(pack(self._weights.view(), "<f8"), self._reference or 0.0)

    def _restore(self, state: msgspec.Raw) -> None:
        loaded = decode(state, _TrendingState)
        weights = unpack(loaded.weights, "<f8", "trending weights", len(self.catalogue))
        if not np.isfinite(weights).all() or (weights < 0).any():
            raise ValueError("trending weights must be finite and non-negative")
        self._weights = Growable(np.float64, weights)
        self._reference = loaded.reference if len(weights) else None
