"""Bayesian conversion rates for funnels.

A funnel step that ``converted`` users passed and ``dropped`` users left has the conversion
rate posterior Beta(prior_a + converted, prior_b + dropped). Steps are independent, so the
whole funnel's conversion probability is the product of its steps' Betas: its mean is the
product of their means, exactly; its equal-tailed credible interval is exact for one step
(the Beta's quantiles) and for two (one numerical integral, see ``_product_cdf``), and a
seeded Monte Carlo estimate for more. ``probability_best`` compares segments (variants,
countries, ...) the way PostHog's Bayesian experiments report "probability to be best".

Monte Carlo results are deterministic for a given seed (numpy's PCG64). With the default
200,000 draws an interval bound's tail probability is off by about
sqrt(q (1 - q) / n) ≈ 0.00035 (q = 0.025), and a probability to be best by at most
sqrt(0.25 / n) ≈ 0.0011 (one standard error).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec
import numpy as np
import numpy.typing as npt
from scipy import integrate, optimize, special  # type: ignore[import-untyped]
from scipy.stats import beta as beta_dist  # type: ignore[import-untyped]

Step = tuple[float, float]  # a step's Beta parameters (alpha, beta)


class Posterior(msgspec.Struct, frozen=True, kw_only=True):
    """A conversion probability: its posterior mean and equal-tailed credible interval.

    ``alpha`` and ``beta`` are set when the posterior is a Beta (a single step).
    """

    mean: float
    low: float
    high: float
    alpha: float | None = None
    beta: float | None = None


def step_posterior(
    converted: int, dropped: int, prior: Step = (1.0, 1.0), level: float = 0.95
) -> Posterior:
    """The posterior of one step's conversion rate; the default prior is uniform."""
    if converted < 0 or dropped < 0:
        raise ValueError(f"counts must be non-negative, got {converted=} and {dropped=}")
    _check_beta(prior, "prior")
    _check_level(level)
    return _beta_posterior(prior[0] + converted, prior[1] + dropped, level)


def product_posterior(
    steps: Sequence[Step], *, level: float = 0.95, samples: int = 200_000, seed: int = 0
) -> Posterior:
    """The posterior of the whole funnel's conversion: the product of independent step
    Betas, given by their parameters. ``samples`` and ``seed`` matter for 3+ steps only."""
    _check_steps(steps, "steps")
    _check_level(level)
    _check_samples(samples)
    if len(steps) == 1:
        return _beta_posterior(steps[0][0], steps[0][1], level)
    mean = math.prod(a / (a + b) for a, b in steps)
    tails = ((1 - level) / 2, (1 + level) / 2)
    if len(steps) == 2:
        low, high = (_product_quantile(steps[0], steps[1], tail) for tail in tails)
    else:
        draws = _product_draws(np.random.Generator(np.random.PCG64(seed)), steps, samples)
        low, high = (float(bound) for bound in np.quantile(draws, tails))
    return Posterior(mean=mean, low=low, high=high)


def probability_best(
    segments: Sequence[Sequence[Step]], *, samples: int = 200_000, seed: int = 0
) -> list[float]:
    """For each segment (its steps' Beta parameters), the probability that its overall
    conversion is the highest of all segments. Seeded Monte Carlo; the values sum to 1."""
    if not segments:
        raise ValueError("no segments given")
    for index, steps in enumerate(segments):
        _check_steps(steps, f"segment {index}")
    _check_samples(samples)
    rng = np.random.Generator(np.random.PCG64(seed))
    draws = np.stack([_product_draws(rng, steps, samples) for steps in segments])
    # A tie (possible when draws round to 0 or 1) is shared by its segments rather than
    # given to the first, which would bias the result towards the order of the list.
    best = draws == draws.max(axis=0)
    shares = best / best.sum(axis=0)
    return [float(share) for share in shares.sum(axis=1) / samples]


def _beta_posterior(alpha: float, beta: float, level: float) -> Posterior:
    tails = ((1 - level) / 2, (1 + level) / 2)
    low, high = (float(bound) for bound in beta_dist.ppf(tails, alpha, beta))
    return Posterior(mean=alpha / (alpha + beta), low=low, high=high, alpha=alpha, beta=beta)


def _product_draws(
    rng: np.random.Generator, steps: Sequence[Step], samples: int
) -> npt.NDArray[np.float64]:
    # One step at a time keeps memory at one vector of draws however long the funnel is.
    product = np.ones(samples)
    for alpha, beta in steps:
        product *= rng.beta(alpha, beta, samples)
    return product


def _product_cdf(narrow: Step, wide: Step, z: float) -> float:
    """P(X Y <= z) for independent X ~ Beta(narrow), Y ~ Beta(wide).

    Integrated over X's quantiles u rather than over x, so the integrand stays bounded
    (no density poles at 0 or 1 when a parameter is below 1) and a peaked X does not hide
    from the integrator: P = F_X(z) + ∫_{F_X(z)}^1 F_Y(z / F_X⁻¹(u)) du (for x <= z,
    x y <= z whatever y is). The narrower Beta goes in X so that F_Y varies slowly.
    """
    if z <= 0:
        return 0.0
    if z >= 1:
        return 1.0
    start = float(special.betainc(narrow[0], narrow[1], z))

    def tail(u: float) -> float:
        x = float(special.betaincinv(narrow[0], narrow[1], u))
        return float(special.betainc(wide[0], wide[1], min(1.0, z / x))) if x > 0 else 1.0

    area, _error = integrate.quad(tail, start, 1.0, epsabs=1e-11, epsrel=1e-10, limit=200)
    return min(1.0, start + float(area))


def _product_quantile(first: Step, second: Step, tail: float) -> float:
    narrow, wide = sorted((first, second), key=lambda step: float(beta_dist.var(*step)))
    root = optimize.brentq(lambda z: _product_cdf(narrow, wide, z) - tail, 0.0, 1.0, xtol=1e-12)
    return float(root)


def _check_beta(parameters: Step, what: str) -> None:
    alpha, beta = parameters
    # "not (x > 0)" also refuses NaN; infinite parameters have no usable Beta.
    if not (alpha > 0 and beta > 0) or not (math.isfinite(alpha) and math.isfinite(beta)):
        raise ValueError(f"{what}: Beta parameters must be positive and finite, got {parameters}")


def _check_steps(steps: Sequence[Step], what: str) -> None:
    if not steps:
        raise ValueError(f"{what}: no steps given")
    for index, step in enumerate(steps):
        _check_beta(step, f"{what}, step {index}")


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (exclusive), got {level}")


def _check_samples(samples: int) -> None:
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
