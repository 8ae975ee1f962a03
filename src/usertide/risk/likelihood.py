"""The per-user likelihood ratio of Freeman et al. (NDSS 2016).

For each level of each feature hierarchy, the user's probability of the observed value
given its parent is smoothed toward the population's:

    p_u(x | parent) = (w_u(x) + μ · p_pop(x | parent)) / (w_u(parent) + μ)

where ``w_u`` are the user's decayed counts. The attacker is modelled by the
population (an attacker looks like a random sign-in), so the evidence for "attack" is
``Σ log p_pop − log p_u`` over the levels. A user with no history scores 0: the
population prior alone says nothing about whether this is them.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

from usertide.risk.features import AGENT_LEVELS, NETWORK_LEVELS, LoginFeatures
from usertide.risk.history import LoginHistory, compact_key, compact_weight, total_weight
from usertide.risk.population import VOCABULARY, Population


class LevelEvidence(NamedTuple):
    level: str
    user_weight: float
    log_ratio: float


@lru_cache(maxsize=100_000)
def _chains(
    network: tuple[str, ...], agent: tuple[str, ...]
) -> tuple[tuple[tuple[str, int, str, str | int], ...], ...]:
    """Per level: (level, vocabulary, population key, compact history key), computed
    once per distinct pair of paths rather than once per sign-in."""
    return tuple(
        tuple(
            (level, VOCABULARY[level], f"{level}|{key}", compact_key(level, key))
            for level, key in zip(levels, keys, strict=True)
        )
        for levels, keys in ((NETWORK_LEVELS, network), (AGENT_LEVELS, agent))
    )


def compact_levels(network: tuple[str, ...], agent: tuple[str, ...]) -> list[tuple[str, str | int]]:
    """(level, compact history key) for every level of both chains."""
    return [(level, compact) for chain in _chains(network, agent) for level, _, _, compact in chain]


def log_likelihood_ratio(
    login: LoginFeatures,
    history: LoginHistory,
    population: Population,
    smoothing: float,
    floor: float = -1.5,
) -> tuple[float, list[LevelEvidence]]:
    now = login.time
    total = total_weight(history, now)
    counts = population.counts
    evidence: list[LevelEvidence] = []
    chain_totals: list[float] = []
    for chain in _chains(login.network, login.agent):
        parent_count = population.logins
        parent_weight = total
        chain_total = 0.0
        for level, vocabulary, pop_key, compact in chain:
            count = counts.get(pop_key, 0)
            p_pop = (count + 1.0) / (parent_count + vocabulary)
            weight = min(compact_weight(history, level, compact, now), parent_weight)
            p_user = (weight + smoothing * p_pop) / (parent_weight + smoothing)
            log_ratio = math.log(p_pop / p_user)
            evidence.append(LevelEvidence(level, weight, log_ratio))
            chain_total += log_ratio
            parent_count, parent_weight = count, weight
        chain_totals.append(chain_total)
    # Familiar values on one hierarchy may not cancel strong evidence on the other (an
    # attacker with the victim's browser model from abroad): each chain can lower the
    # total by at most ``floor`` nats.
    return sum(max(t, floor) for t in chain_totals), evidence
