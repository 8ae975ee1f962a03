"""The per-user likelihood ratio of Freeman et al. (NDSS 2016).

For each level of each feature hierarchy, the user's probability of the observed value
given its parent is smoothed toward the population's:

    p_u(x | parent) = (w_u(x) + μ · p_pop(x | parent)) / (w_u(parent) + μ)

where ``w_u`` are the user's decayed counts. A value the user has never used costs
log(1 + w_u(parent) / μ) nats whatever the level, so μ may differ per level
(``level_smoothing``): a household's /24 churns (DHCP, carrier NAT) where its ISP does
not, so a larger μ at the /24 level makes a new /24 of the user's own ISP cost less
than a new ISP (which ``assess`` weighs with ``RiskConfig.weights["new_network"]``).
The attacker is modelled by the population (an attacker looks like a random sign-in),
so the evidence for "attack" is
``Σ log p_pop − log p_u`` over the levels. A user with no history scores 0: the
population prior alone says nothing about whether this is them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from usertide.risk.features import AGENT_LEVELS, NETWORK_LEVELS, LoginFeatures
from usertide.risk.history import (
    UNSEARCHED,
    Count,
    LoginHistory,
    compact_key,
    decay,
    total_weight,
)
from usertide.risk.population import VOCABULARY, Population


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


@lru_cache(maxsize=100_000)
def compact_levels(
    network: tuple[str, ...], agent: tuple[str, ...]
) -> tuple[tuple[str, str | int], ...]:
    """(level, compact history key) for every level of both chains."""
    return tuple(
        (level, compact) for chain in _chains(network, agent) for level, _, _, compact in chain
    )


def _population_chains(
    population: Population, network: tuple[str, ...], agent: tuple[str, ...]
) -> tuple[tuple[tuple[str, str | int, float, int], ...], ...]:
    """Per level: (level, compact history key, p_pop(x | parent), count(x)), computed
    once per snapshot and pair of paths (a snapshot never changes once built)."""
    cache = _POPULATION_CACHE.get(id(population))
    if cache is None or cache[0] is not population:
        if len(_POPULATION_CACHE) >= 4:
            _POPULATION_CACHE.clear()
        cache = (population, {})
        _POPULATION_CACHE[id(population)] = cache
    memo = cache[1]
    chains = memo.get((network, agent))
    if chains is None:
        counts = population.counts
        out = []
        for chain in _chains(network, agent):
            parent_count = population.logins
            levels = []
            for level, vocabulary, pop_key, compact in chain:
                count = counts.get(pop_key, 0)
                levels.append((level, compact, (count + 1.0) / (parent_count + vocabulary), count))
                parent_count = count
            out.append(tuple(levels))
        chains = tuple(out)
        if len(memo) >= 100_000:
            memo.clear()
        memo[(network, agent)] = chains
    return chains


# id(snapshot) → (snapshot, its memo); the snapshot is kept so its id is not reused
_POPULATION_CACHE: dict[
    int, tuple[Population, dict[tuple[tuple[str, ...], tuple[str, ...]], Any]]
] = {}


def log_likelihood_ratio(
    login: LoginFeatures,
    history: LoginHistory,
    population: Population,
    smoothing: float,
    floor: float = -1.5,
    found: list[Count | None] | None = None,
    level_smoothing: Mapping[str, float] | None = None,
) -> tuple[float, dict[str, float]]:
    """The log-likelihood ratio, and the user's decayed weight of each level's value.

    ``found`` (when given) receives, per level in ``compact_levels`` order, the user's
    count of the value, ``None`` when the user has none, or ``UNSEARCHED``: learning
    from the same sign-in then needs no second search. ``level_smoothing``: μ of the
    levels that do not use ``smoothing``.
    """
    mus = level_smoothing or {}
    now = login.time
    total = total_weight(history, now)
    user_levels = history.levels
    weights: dict[str, float] = {}
    result = 0.0
    # The levels of one sign-in were last seen together: one decay factor per distinct
    # time, not per level.
    last_at = -1
    factor = 1.0
    for chain in _population_chains(population, login.network, login.agent):
        parent_weight = total
        ratio = 1.0  # the product of the levels' likelihood ratios: one log per chain
        for level, compact, p_pop, _ in chain:
            if parent_weight <= 0.0:
                # The user has never used the parent: this level's weight is clamped to
                # 0, its ratio is p_pop·μ / (μ·p_pop) = 1, and so are the ones below.
                weights[level] = 0.0
                if found is not None:
                    found.append(UNSEARCHED)
                continue
            weight = 0.0
            match: Count | None = None
            for count in user_levels.get(level, ()):
                if count.key == compact:
                    match = count
                    if count.last != last_at:
                        last_at = count.last
                        factor = decay(1.0, last_at, now)
                    weight = count.milli / 1000.0 * factor
                    break
            if weight > parent_weight:
                weight = parent_weight
            if found is not None:
                found.append(match)
            mu = mus.get(level, smoothing)
            ratio *= p_pop * (parent_weight + mu) / (weight + mu * p_pop)
            weights[level] = weight
            parent_weight = weight
        chain_total = math.log(ratio)
        # Familiar values on one hierarchy may not cancel strong evidence on the other
        # (an attacker with the victim's browser model from abroad): each chain can
        # lower the total by at most ``floor`` nats.
        result += chain_total if chain_total > floor else floor
    return result, weights
