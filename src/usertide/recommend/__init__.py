"""Recommenders by name, as the service and ``usertide eval recommend`` name them.

Each factory makes a new, empty recommender with the settings chosen by the offline
evaluation on yoochoose ``train_tr`` -> ``train_valid`` (docs/recommendations.md);
``DEFAULT`` is what is served when a request names none. The textbook baselines (``ar``,
``sr``, ``vsknn``) keep session-rec's settings.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.util import find_spec
from typing import Final

from usertide.recommend.base import Recommender
from usertide.recommend.blend import Blend
from usertide.recommend.knn import STAN, VSKNN, VSTAN, STANConfig, VSKNNConfig
from usertide.recommend.popular import Popular, Trending, TrendingConfig
from usertide.recommend.rules import AssociationRules, RulesConfig, SequentialRules
from usertide.recommend.sasrec import SASRec, SASRecConfig  # imports torch only when it runs

# Chosen by coordinate descent from session-rec's published rsc15 settings.
TUNED_STAN: Final = STANConfig(
    k=500, sample_size=1000, lambda_spw=0.5, lambda_snh=5.0, lambda_inh=4.0
)
TUNED_VSTAN: Final = STANConfig(
    k=500,
    sample_size=1000,
    lambda_spw=1.0,
    lambda_snh=10.0,
    lambda_inh=4.0,
    lambda_ipw=2.0,
    lambda_idf=2.0,
)
SR_WEIGHT: Final = 0.1  # sequential rules' share in the blend


def _blend() -> Blend:
    return Blend([(VSTAN(TUNED_VSTAN), 1.0), (SequentialRules(), SR_WEIGHT)])


RECOMMENDERS: Final[dict[str, Callable[[], Recommender]]] = {
    "popular": Popular,
    "trending": lambda: Trending(TrendingConfig(half_life_hours=6.0)),
    "ar": AssociationRules,
    "sr": SequentialRules,
    "vsknn": VSKNN,
    "stan": lambda: STAN(TUNED_STAN),
    "vstan": lambda: VSTAN(TUNED_VSTAN),
    "blend": _blend,
}
if find_spec("torch") is not None:  # the optional extra usertide[deep]; not imported here
    RECOMMENDERS["sasrec"] = SASRec
DEFAULT: Final = "blend"
BASELINES: Final = ("popular", "ar", "sr", "vsknn")


def recommender(name: str | None = None) -> Recommender:
    """A new recommender of that name (``DEFAULT`` when None)."""
    try:
        return RECOMMENDERS[name or DEFAULT]()
    except KeyError:
        raise ValueError(
            f"unknown recommender {name!r}; known: {', '.join(sorted(RECOMMENDERS))}"
        ) from None


def load(data: bytes) -> Recommender:
    """A recommender from its ``to_bytes`` snapshot (ValueError for anything else)."""
    return Recommender.from_bytes(data)


__all__ = [
    "BASELINES",
    "DEFAULT",
    "RECOMMENDERS",
    "STAN",
    "VSKNN",
    "VSTAN",
    "AssociationRules",
    "Blend",
    "Popular",
    "Recommender",
    "RulesConfig",
    "SASRec",
    "SASRecConfig",
    "STANConfig",
    "SequentialRules",
    "Trending",
    "TrendingConfig",
    "VSKNNConfig",
    "load",
    "recommender",
]
