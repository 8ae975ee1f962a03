"""How many trees the session forest needs: ranking quality against scoring cost.

The engine scores every event, so each tree costs on every event. Protocol: the session
simulator's stream (real yoochoose human sessions and its six bot types,
``usertide.evaluation.session_sim``) through the engine; every session's final features;
an isolation forest with 25, 50 and 100 trees (256 samples a tree, scikit-learn) fitted
on all of them, as the service's trainer fits on recent sessions, for three seeds each;
ROC AUC of bots against humans (all bots, and each type against the humans) on the same
sessions; and the median cost of one ``SessionModel.score`` (the forest and its
two-feature companion, the engine's per-event call). Baseline: scikit-learn's default of
100 trees.

    python -m benchmarks --only trees --write
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

from benchmarks.bench_detectors import normalized, session_features
from benchmarks.common import Context, Row, log
from usertide.anomaly.isolation import IsolationForestDetector
from usertide.anomaly.trainer import fit_session_model

NAME = "trees"
TITLE = "session forest size"
TREES = (25, 50, 100)
SEEDS = (0, 1, 2)


def run(ctx: Context) -> list[Row]:
    from usertide.evaluation.session_sim import SessionSimConfig, simulate

    humans = 3_000 if ctx.quick else 17_794
    simulated = simulate(SessionSimConfig(humans=humans))
    ids, X = session_features(normalized(simulated))
    labels = [simulated.truth.get(i.split("#")[0], "human") for i in ids]
    bot = np.array([label != "human" for label in labels])
    types = sorted(set(labels) - {"human"})
    rows_as_lists = X.tolist()
    log(f"  {len(ids):,} sessions, {int(bot.sum()):,} of them bots")
    results: dict[int, tuple[float, dict[str, float], float]] = {}
    for trees in TREES:
        aucs: list[float] = []
        per_type: dict[str, list[float]] = {t: [] for t in types}
        costs: list[float] = []
        for seed in SEEDS:
            detector = IsolationForestDetector(n_estimators=trees, random_state=seed)
            model = fit_session_model(detector, X, version=1)
            model.score(rows_as_lists[0])  # compiles the scorer: not part of the cost
            t0 = time.perf_counter()
            scores = np.array([model.score(x) for x in rows_as_lists])
            costs.append((time.perf_counter() - t0) / len(rows_as_lists) * 1e6)
            aucs.append(float(roc_auc_score(bot, scores)))
            for kind in types:
                mask = np.array([label in ("human", kind) for label in labels])
                per_type[kind].append(float(roc_auc_score(bot[mask], scores[mask])))
        results[trees] = (
            statistics.mean(aucs),
            {k: statistics.mean(v) for k, v in per_type.items()},
            statistics.median(costs),
        )
        seeds = ", ".join(f"{a:.4f}" for a in aucs)
        log(f"  {trees} trees: all-bots ROC AUC {results[trees][0]:.4f} (seeds: {seeds}), "
            f"{results[trees][2]:.1f} µs a score")  # fmt: skip
    ctx.note(
        f"{len(ids):,} simulated sessions ({humans:,} yoochoose humans and "
        f"{int(bot.sum()):,} bots), fitted and scored on all of them; mean over seeds "
        f"{', '.join(map(str, SEEDS))}; per type: "
        + "; ".join(
            f"{trees} trees " + ", ".join(f"{k} {v:.3f}" for k, v in results[trees][1].items())
            for trees in TREES
        )
    )
    base_auc, _, base_cost = results[100]
    out: list[Row] = []
    for trees in TREES:
        auc, _, cost = results[trees]
        out.append(Row(TITLE, f"all-bots ROC AUC, {trees} trees", auc, baseline=base_auc))
        out.append(Row(TITLE, f"µs a session score, {trees} trees", cost, "µs",
                       baseline=base_cost, higher_is_better=False))  # fmt: skip
    return out
