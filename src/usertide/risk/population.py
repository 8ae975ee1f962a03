"""Population frequencies of sign-in features: the attacker model and the prior.

A snapshot is built from stored sign-ins by :func:`train_population` and handed to the
detector read-only; it never changes under a running engine, so processing stays a
pure function of (event, user state, snapshot version).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import msgspec

from usertide.risk.features import AGENT_LEVELS, NETWORK_LEVELS, LoginFeatures

# Rough numbers of distinct values a level takes under its parent, for the Laplace
# prior when the population has not seen a value (or there is no population yet).
VOCABULARY = {
    "country": 200,
    "network": 50,
    "prefix": 40,
    "device": 4,
    "os": 8,
    "browser": 10,
    "major": 20,
    "agent": 20,
}
LEVELS = NETWORK_LEVELS + AGENT_LEVELS


class Population(msgspec.Struct, kw_only=True):
    version: int = 0
    logins: int = 0
    counts: dict[str, int] = msgspec.field(default_factory=dict)  # "level|key" → sign-ins

    def count(self, level: str, key: str) -> int:
        return self.counts.get(f"{level}|{key}", 0)

    def probability(self, level: str, key: str, parent_level: str | None, parent: str) -> float:
        """p(key | parent) with add-one smoothing over the level's vocabulary."""
        parent_count = self.logins if parent_level is None else self.count(parent_level, parent)
        return (self.count(level, key) + 1.0) / (parent_count + VOCABULARY[level])


def train_population(
    logins: Iterable[LoginFeatures], version: int = 1, min_count: int = 1
) -> Population:
    """Counts of every level's key over successful sign-ins (rare keys dropped)."""
    counts: Counter[str] = Counter()
    total = 0
    for login in logins:
        if not login.success:
            continue
        total += 1
        for level, key in zip(NETWORK_LEVELS, login.network, strict=True):
            counts[f"{level}|{key}"] += 1
        for level, key in zip(AGENT_LEVELS, login.agent, strict=True):
            counts[f"{level}|{key}"] += 1
    kept = {k: n for k, n in counts.items() if n >= min_count}
    return Population(version=version, logins=total, counts=kept)
