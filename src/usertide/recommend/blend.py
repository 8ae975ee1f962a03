"""A weighted blend of recommenders: each part's scores, divided by its best, times its
weight, summed. The parts learn the same events through the blend and share its
catalogue; the popularity fallback (``base.py``) fills what the parts leave short."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import msgspec
import numpy as np

from usertide.recommend.base import EMPTY, Catalogue, Recommender, Scores, decode


class _BlendState(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    parts: list[msgspec.Raw]


class Blend(Recommender):
    name = "blend"

    def __init__(self, parts: Sequence[tuple[Recommender, float]]) -> None:
        if not parts:
            raise ValueError("a blend needs at least one part")
        for part, weight in parts:
            if not weight > 0:
                raise ValueError(f"blend weights must be positive: {weight!r}")
            if part.items() or isinstance(part, Blend):
                raise ValueError("a blend's parts must be new, and not blends themselves")
        self.parts = list(parts)
        super().__init__()
        self._adopt(self.catalogue)

    def _adopt(self, catalogue: Catalogue) -> None:
        super()._adopt(catalogue)
        for part, _ in self.parts:
            part._adopt(catalogue)

    def _learn(self, session_id: str, item: int, timestamp: float) -> None:
        for part, _ in self.parts:
            part._learn(session_id, item, timestamp)

    def forget_session(self, session_id: str) -> None:
        for part, _ in self.parts:
            part.forget_session(session_id)

    def _scores(self, session: Sequence[int], session_id: str | None) -> Scores:
        total = np.zeros(len(self.catalogue))
        for part, weight in self.parts:
            items, scores = part._scores(session, session_id)
            if len(scores):
                total[items] += scores * (weight / scores.max())
        candidates = np.flatnonzero(total > 0)
        return (candidates, total[candidates]) if len(candidates) else EMPTY

    def settings(self) -> Any:
        return [
            {"name": part.name, "weight": weight, "settings": part.settings()}
            for part, weight in self.parts
        ]

    @classmethod
    def _configured(cls, settings: Any) -> Self:
        parts = msgspec.convert(settings, list[_Part])
        return cls(
            [(Recommender._classes[p.name]._configured(p.settings), p.weight) for p in parts]
        )

    def _state(self) -> Any:
        return _BlendState([msgspec.Raw(msgspec.msgpack.encode(p._state())) for p, _ in self.parts])

    def _restore(self, state: msgspec.Raw) -> None:
        loaded = decode(state, _BlendState)
        if len(loaded.parts) != len(self.parts):
            raise ValueError("the blend's state does not match its parts")
        for (part, _), raw in zip(self.parts, loaded.parts, strict=True):
            part._restore(raw)


class _Part(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    weight: float
    settings: Any

    def __post_init__(self) -> None:
        if self.name not in Recommender._classes or self.name == Blend.name:
            raise ValueError(f"unknown blend part {self.name!r}")
