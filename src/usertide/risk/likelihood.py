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
from typing import NamedTuple

from usertide.risk.features import AGENT_LEVELS, NETWORK_LEVELS, LoginFeatures
from usertide.risk.history import LoginHistory, total_weight, weight_of
from usertide.risk.population import Population


class LevelEvidence(NamedTuple):
    level: str
    user_weight: float
    log_ratio: float


def log_likelihood_ratio(
    login: LoginFeatures,
    history: LoginHistory,
    population: Population,
    smoothing: float,
    floor: float = -1.5,
) -> tuple[float, list[LevelEvidence]]:
    now = login.time
    total = total_weight(history, now)
    evidence: list[LevelEvidence] = []
    for levels, keys in ((NETWORK_LEVELS, login.network), (AGENT_LEVELS, login.agent)):
        parent_level: str | None = None
        parent_key = ""
        parent_weight = total
        for level, key in zip(levels, keys, strict=True):
            p_pop = population.probability(level, key, parent_level, parent_key)
            weight = min(weight_of(history, level, key, now), parent_weight)
            p_user = (weight + smoothing * p_pop) / (parent_weight + smoothing)
            evidence.append(LevelEvidence(level, weight, math.log(p_pop) - math.log(p_user)))
            parent_level, parent_key, parent_weight = level, key, weight
    # Familiar values on one hierarchy may not cancel strong evidence on the other (an
    # attacker with the victim's browser model from abroad): each chain can lower the
    # total by at most ``floor`` nats.
    network = sum(e.log_ratio for e in evidence[: len(NETWORK_LEVELS)])
    agent = sum(e.log_ratio for e in evidence[len(NETWORK_LEVELS) :])
    return max(network, floor) + max(agent, floor), evidence
