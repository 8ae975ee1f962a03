"""A funnel's answer: counts per step with Bayesian conversion rates.

Each step's rate from the previous one has the posterior Beta(α + converted,
β + dropped) (``prior`` [α, β], uniform by default): its mean and equal-tailed 95 %
credible interval. The whole funnel's probability is the product of its steps'
(independent) rates; each breakdown group gets the probability that its whole-funnel
rate is the highest of the groups ("probability to be best").
"""

from __future__ import annotations

from typing import Any

import msgspec

from usertide.analytics.bayes import Posterior, probability_best, product_posterior, step_posterior
from usertide.analytics.funnels import FunnelQuery, step_counts
from usertide.store import Store

SEED = 0  # Monte Carlo draws are seeded: the same data gives the same answer


def funnel_report(store: Store, q: FunnelQuery) -> dict[str, Any]:
    counts = step_counts(store, q)
    everyone = counts.pop("$all")
    out: dict[str, Any] = _funnel(q, everyone)
    if q.breakdown is not None:
        groups = sorted(counts.items(), key=lambda kv: (-kv[1][0]["users"], kv[0] is None,
                                                        str(kv[0])))  # fmt: skip
        segments = [_funnel(q, steps) for _, steps in groups]
        best = (
            probability_best([s["_betas"] for s in segments], seed=SEED)
            if len(segments) > 1
            else [1.0] * len(segments)
        )
        out["breakdown"] = [
            {"value": value, **_public(segment), "probability_best": p}
            for (value, _), segment, p in zip(groups, segments, best, strict=True)
        ]
    return _public(out)


def _funnel(q: FunnelQuery, counts: list[dict[str, Any]]) -> dict[str, Any]:
    first = counts[0]["users"]
    steps: list[dict[str, Any]] = []
    betas: list[tuple[float, float]] = []
    for k, (step, count) in enumerate(zip(q.steps, counts, strict=True)):
        users = count["users"]
        entry: dict[str, Any] = {"event": step.event, "users": users}
        if k == 0:
            entry.update(dropped=0, conversion=None, time_to_convert=None)
        else:
            previous = counts[k - 1]["users"]
            posterior = step_posterior(users, previous - users, q.prior)
            assert posterior.alpha is not None and posterior.beta is not None
            betas.append((posterior.alpha, posterior.beta))
            entry.update(
                dropped=previous - users,
                conversion={
                    "from_previous": users / previous if previous else None,
                    "from_first": users / first if first else None,
                    "posterior": _interval(posterior),
                },
                time_to_convert=count["time_to_convert"],
            )
        steps.append(entry)
    overall = product_posterior(betas, seed=SEED)
    return {
        "steps": steps,
        "overall": {
            "users": counts[-1]["users"],
            "from_first": counts[-1]["users"] / first if first else None,
            "posterior": _interval(overall),
        },
        "_betas": betas,
    }


def _interval(p: Posterior) -> dict[str, float]:
    return {k: v for k, v in msgspec.to_builtins(p).items() if k in ("mean", "low", "high")}


def _public(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if not k.startswith("_")}
