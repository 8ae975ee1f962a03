"""Bayesian funnel conversion, checked against scipy: Beta quantiles, numerical integrals,
and an exact identity for products of Betas.

Monte Carlo tolerances are in probability space, where the error of n draws is known
without estimating a density: an empirical q-quantile has tail probability q within
sqrt(q (1 - q) / n) (one standard error); a probability to be best p within
sqrt(p (1 - p) / n). Every check allows ``SIGMAS`` standard errors, so a correct
implementation fails it with probability below 1e-6, whatever the seed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import pytest
from scipy import integrate, stats

from usertide.analytics.bayes import (
    Posterior,
    probability_best,
    product_posterior,
    step_posterior,
)

SIGMAS = 5.0
SAMPLES = 200_000  # the functions' default


def tail_tolerance(q: float, *sample_sizes: int) -> float:
    """SIGMAS standard errors of the difference between independent estimates."""
    return SIGMAS * math.sqrt(q * (1 - q) * sum(1 / n for n in sample_sizes))


def chained(alpha: float, *betas: float) -> list[tuple[float, float]]:
    """Steps whose product is exactly Beta(alpha, sum(betas)): if X ~ Beta(a, b) and
    Y ~ Beta(a + b, c) are independent, X Y ~ Beta(a, b + c) (and so on, by induction)."""
    steps = []
    total = alpha
    for beta in betas:
        steps.append((total, beta))
        total += beta
    return steps


def product_cdf(first: tuple[float, float], second: tuple[float, float], z: float) -> float:
    """P(X Y <= z) by integrating a density over x, unlike the module (which integrates
    over quantiles): P = F_X(z) + ∫_z^1 f_X(x) F_Y(z / x) dx. X is the narrower Beta:
    the other way round, F_Y(z / x) can fall from 1 to 0 in a sliver next to z, which
    quad misses (Beta(0.3, 5) times Beta(900, 1) is off by 2e-5 then)."""
    x_step, y_step = sorted((first, second), key=lambda step: float(stats.beta.var(*step)))
    x_dist, y_dist = stats.beta(*x_step), stats.beta(*y_step)
    area, _ = integrate.quad(
        lambda x: x_dist.pdf(x) * y_dist.cdf(z / x), z, 1, epsabs=1e-12, limit=200
    )
    return float(x_dist.cdf(z) + area)


# -- one step ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("converted", "dropped", "prior", "level"),
    [(30, 70, (1.0, 1.0), 0.95), (0, 12, (0.5, 0.5), 0.9), (4_812, 3, (2.0, 8.0), 0.99)],
)
def test_step_posterior_is_the_beta(
    converted: int, dropped: int, prior: tuple[float, float], level: float
) -> None:
    alpha, beta = prior[0] + converted, prior[1] + dropped
    posterior = step_posterior(converted, dropped, prior, level)
    assert (posterior.alpha, posterior.beta) == (alpha, beta)
    assert posterior.mean == pytest.approx(stats.beta.mean(alpha, beta), rel=1e-12)
    low, high = stats.beta.ppf([(1 - level) / 2, (1 + level) / 2], alpha, beta)
    assert (posterior.low, posterior.high) == pytest.approx((low, high), rel=1e-12)
    assert posterior.low < posterior.mean < posterior.high


def test_one_step_product_is_exact() -> None:
    assert product_posterior([(31.0, 71.0)], level=0.9) == step_posterior(30, 70, level=0.9)


# -- the product of steps ----------------------------------------------------------------


@pytest.mark.parametrize(
    "steps",
    [chained(3, 2, 4), chained(30, 20, 400), chained(0.5, 0.5, 0.7), chained(3_000, 2_000, 4)],
)
def test_two_step_interval_is_exact(steps: list[tuple[float, float]]) -> None:
    alpha, beta = steps[0][0], sum(step[1] for step in steps)
    posterior = product_posterior(steps)
    assert posterior.mean == pytest.approx(stats.beta.mean(alpha, beta), rel=1e-12)
    expected = stats.beta.ppf([0.025, 0.975], alpha, beta)
    assert (posterior.low, posterior.high) == pytest.approx(expected, rel=1e-7)
    assert (posterior.alpha, posterior.beta) == (None, None)


@pytest.mark.parametrize(
    "steps",
    [
        [(40.0, 60.0), (8.0, 3.0)],
        [(2.0, 2.0), (50_000.0, 50_000.0)],  # a wide step and a very narrow one
        [(0.3, 5.0), (900.0, 1.0)],  # a density with a pole at 0
    ],
)
def test_two_step_interval_matches_an_integral_over_the_density(
    steps: list[tuple[float, float]],
) -> None:
    posterior = product_posterior(steps, level=0.9)
    assert product_cdf(steps[0], steps[1], posterior.low) == pytest.approx(0.05, abs=1e-7)
    assert product_cdf(steps[0], steps[1], posterior.high) == pytest.approx(0.95, abs=1e-7)
    assert posterior.mean == pytest.approx(math.prod(a / (a + b) for a, b in steps), rel=1e-12)


def test_longer_funnel_interval_matches_the_exact_beta() -> None:
    steps = chained(3, 2, 4, 1.5, 6)
    posterior = product_posterior(steps)
    exact = stats.beta(3, 2 + 4 + 1.5 + 6)
    assert posterior.mean == pytest.approx(exact.mean(), rel=1e-12)
    for bound, q in ((posterior.low, 0.025), (posterior.high, 0.975)):
        assert exact.cdf(bound) == pytest.approx(q, abs=tail_tolerance(q, SAMPLES))


def test_longer_funnel_interval_matches_a_larger_independent_simulation() -> None:
    steps = [(120.0, 80.0), (45.0, 75.0), (20.0, 25.0), (9.0, 11.0)]
    posterior = product_posterior(steps, level=0.8)
    reference_size = 1_000_000
    rng = np.random.default_rng(12_345)
    reference = np.prod([rng.beta(a, b, reference_size) for a, b in steps], axis=0)
    for bound, q in ((posterior.low, 0.1), (posterior.high, 0.9)):
        tail = float(np.mean(reference <= bound))
        assert tail == pytest.approx(q, abs=tail_tolerance(q, SAMPLES, reference_size))


def test_simulation_is_deterministic_for_a_seed() -> None:
    steps = [(120.0, 80.0), (45.0, 75.0), (20.0, 25.0)]
    first = product_posterior(steps, samples=20_000, seed=7)
    assert product_posterior(steps, samples=20_000, seed=7) == first
    assert product_posterior(steps, samples=20_000, seed=8) != first
    assert product_posterior(steps, samples=20_000, seed=8).mean == first.mean  # exact
    segments = [[(10.0, 20.0)], [(12.0, 18.0), (50.0, 2.0)]]
    assert probability_best(segments, samples=20_000, seed=3) == probability_best(
        segments, samples=20_000, seed=3
    )


# -- probability to be best ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("x_step", "y_step"),
    [((31.0, 71.0), (41.0, 61.0)), ((120.0, 880.0), (131.0, 869.0)), ((0.5, 3.0), (2.0, 9.0))],
)
def test_probability_best_matches_the_integral(
    x_step: tuple[float, float], y_step: tuple[float, float]
) -> None:
    x_dist, y_dist = stats.beta(*x_step), stats.beta(*y_step)
    # P(X > Y) = ∫ f_X(x) F_Y(x) dx
    expected, _ = integrate.quad(lambda x: x_dist.pdf(x) * y_dist.cdf(x), 0, 1, epsabs=1e-12)
    x_best, y_best = probability_best([[x_step], [y_step]])
    assert x_best + y_best == pytest.approx(1.0, abs=1e-12)
    assert x_best == pytest.approx(expected, abs=tail_tolerance(expected, SAMPLES))


def test_probability_best_of_funnels_sums_to_one_and_ranks_them() -> None:
    segments = [
        [(300.0, 700.0), (150.0, 150.0)],  # ~0.15 overall
        [(320.0, 680.0), (170.0, 150.0)],  # ~0.17
        [(280.0, 720.0), (140.0, 160.0)],  # ~0.13
    ]
    chances = probability_best(segments)
    assert sum(chances) == pytest.approx(1.0, abs=1e-12)
    assert chances[1] > chances[0] > chances[2]


def test_identical_segments_are_equally_likely_to_be_best() -> None:
    funnel = [(200.0, 300.0), (80.0, 120.0)]
    chances = probability_best([funnel, funnel, list(funnel), funnel])
    for chance in chances:
        assert chance == pytest.approx(0.25, abs=tail_tolerance(0.25, SAMPLES))
    assert probability_best([funnel]) == [1.0]


def test_ties_are_shared() -> None:
    # Beta(1e-3, 1e3) draws underflow to exactly 0.0 most of the time, so both segments
    # often tie at 0; a tie must not go to the first segment listed.
    tiny = [(1e-3, 1e3)]
    first, second = probability_best([tiny, tiny], samples=20_000)
    assert first == pytest.approx(0.5, abs=tail_tolerance(0.5, 20_000))
    assert first + second == pytest.approx(1.0, abs=1e-12)


# -- input validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: step_posterior(-1, 5), "non-negative"),
        (lambda: step_posterior(3, -2), "non-negative"),
        (lambda: step_posterior(3, 2, prior=(0.0, 1.0)), "prior: Beta parameters must be"),
        (lambda: step_posterior(3, 2, prior=(1.0, math.nan)), "prior: Beta parameters"),
        (lambda: step_posterior(3, 2, prior=(math.inf, 1.0)), "prior: Beta parameters"),
        (lambda: step_posterior(3, 2, level=1.0), "level must be between 0 and 1"),
        (lambda: step_posterior(3, 2, level=0.0), "level"),
        (lambda: step_posterior(3, 2, level=math.nan), "level"),
        (lambda: product_posterior([]), "steps: no steps"),
        (lambda: product_posterior([(1.0, 2.0), (-1.0, 2.0)]), "steps, step 1: Beta"),
        (lambda: product_posterior([(1.0, 2.0)], level=1.5), "level"),
        (lambda: product_posterior([(1.0, 2.0)] * 3, samples=0), "samples must be at least 1"),
        (lambda: probability_best([]), "no segments"),
        (lambda: probability_best([[(1.0, 2.0)], []]), "segment 1: no steps"),
        (lambda: probability_best([[(1.0, 2.0)], [(3.0, 0.0)]]), "segment 1, step 0"),
        (lambda: probability_best([[(1.0, 2.0)]], samples=-5), "samples"),
    ],
)
def test_bad_input_is_refused_with_the_problem_named(
    call: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_posterior_is_immutable() -> None:
    posterior = Posterior(mean=0.5, low=0.1, high=0.9)
    with pytest.raises(AttributeError):
        posterior.mean = 0.6  # type: ignore[misc]
