"""Conversion propensity: which ad clicks lead to a download (issue 11).

``usertide eval conversion --train F --test F`` fits gradient-boosted trees on the
click features of ``conversion_features`` and, in the same run, the original design's
baseline: a logistic regression on the hour of day and the day of week, both one-hot.
Both are scored on the test file: ROC AUC with a bootstrap 95 % interval, PR AUC
(average precision), log loss, and calibration (Brier score, a 10-bin reliability table
and the expected calibration error). ``--split-by-time 0.7 FILE`` trains on the earliest
70 % of one file and tests on the rest.

The protocol keeps the test clicks out of every choice:

1. Features are causal: each click's come from the clicks at or before its time only
   (the test's continue from the training clicks, as a live stream's would).
2. Every choice is made on a time-ordered validation *inside* the training clicks:
   three expanding folds, each fitting on the earlier training clicks and validating on
   the next fifth (40-60 %, 60-80 %, 80-100 % of the training clicks), the category
   codes learned on each fold's fitting part alone.
3. On those folds, two boosters are tuned: one with the ids as categorical features,
   one with the same codes (ordered by frequency) as plain numbers. For each, with and
   without ``class_weight="balanced"``, the number of boosting rounds is stopped early
   at the best mean validation ROC AUC (checked every 25 rounds, up to 300); the better
   class weight is kept (ties keep unweighted). The fixed settings (4 leaves, 20 clicks
   a leaf at least, L2 1.0, learning rate 0.05, ids seen fewer than 5 times grouped) and
   the feature list were chosen during development on the same folds, on the training
   part of the shared TalkingData file only.
4. Both are refit on all training clicks with their chosen rounds and averaged. A
   balanced booster's odds are multiplied back by the training conversion odds, so the
   average stays a probability (the ranking, hence ROC AUC, is unchanged by that). The
   same average, of the chosen boosters on each fold, is validated too (the report's
   "average of the chosen" row): that is the figure the final model was judged by.
5. Only then is the test file scored, once.

What else was tried, on the same folds (the mean validation ROC AUC of the averaged
pair; this method scores 0.970 on the shared TalkingData file's training part), and why
none was kept: nothing beat it by more than the folds' noise. Each fold validates on
17-33 conversions, and a single conversion in a mass-market app (app 3, 9 or 18, which
hardly ever convert) ranked below a fifth or more of the clicks costs that fold about
0.01-0.02 of AUC, so differences of a few thousandths are chance; the test figures of
the same variants (0.949-0.971, never used to choose) did not follow the fold order.

- Smoothed target encodings (conversion rate with a prior of weight 20 or 50, learned
  on each fold's fitting part and frozen for its validation clicks; for the fitting
  clicks themselves out-of-fold in 5 random or 5 time blocks, or causal, from earlier
  fitting clicks only) of app, channel, os, app x channel and app x os, added to both
  boosters: 0.957-0.964; as a third booster beside the pair: 0.965-0.971.
- More 24-hour count keys (app x os, app x device, os x device, channel x os): 0.968;
  (ip x app x device x os, ip x os, ip x device): 0.970; device, os: 0.965; more 1-hour
  keys: 0.969; more recency keys (ip x app, ip x channel, ip x device x os, the click
  before the previous): 0.970; distinct os and devices by ip: 0.970; distinct apps by
  ip x device x os, channels by app and os by ip x app: 0.970; a running total per
  ip x app x device x os: 0.970 (never split on).
- Traffic shares (a key's 24-hour or 1-hour count over all clicks in the window, against
  the short first day): 0.960-0.964.
- Tree settings: 2, 3, 6, 8 or 16 leaves 0.953-0.965; 20 clicks a leaf at least at 50 or
  100 0.969-0.971; L2 10, 30, 100, 300 0.963-0.969; learning rate 0.025 (up to 600
  rounds) or 0.1: 0.970; ids grouped below 2, 3, 10 or 20 clicks 0.968-0.970.
- Weighting recent clicks up (half-life 12 or 24 hours): 0.965-0.967. Averaging all four
  candidates instead of the chosen two: 0.962.
- Bagging, each booster the average of 3, 5 or 10 fitted on Poisson bootstrap weights:
  0.970-0.976 depending on the bootstrap seeds alone (5 boosters: 0.976 with one set of
  seeds, 0.970 with another), at 3-10 times the cost.
- Only the 7 history features that permutation importance on the folds found used
  (hour, 24-hour counts by ip, app, channel and app x channel, 1-hour count by app,
  seconds since the ip's previous click): 0.970, the same.

The test's ROC AUC interval is a stratified bootstrap (conversions and non-conversions
resampled separately, seeded): with a few dozen conversions, a few hundredths of AUC
are noise. The trees use no row or column subsampling, so they are deterministic and
averaging seeds would change nothing; on the folds, column subsampling (0.7) averaged
over five seeds validated the same as one full booster (within 0.001) at five times the
cost, so it is not used.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.metrics import (  # type: ignore[import-untyped]
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from usertide.evaluation.conversion_features import (
    CATEGORICAL,
    CategoryCodes,
    ClickHistory,
    Clicks,
    FloatArray,
    IntArray,
    context_features,
    day_of_week,
    hour_of_day,
    read_clicks,
    split_by_time,
)

SEED: Final = 11
BINS: Final = 10
BOOTSTRAP_ROUNDS: Final = 2_000
# Expanding validation folds inside the training clicks: (fit up to, validate up to).
FOLDS: Final = ((0.4, 0.6), (0.6, 0.8), (0.8, 1.0))
ENCODINGS: Final = ("categorical", "ordinal")
CLASS_WEIGHTS: Final = ("none", "balanced")
_MAX_ROUNDS: Final = 300
_ROUND_STEP: Final = 25
_DEFAULT_ROUNDS: Final = 100  # when the training clicks are too few to validate on
PROTOCOL: Final = (
    "causal features (each click's from the clicks at or before it); for a categorical-id "
    "and an ordinal-id booster, class weight and early-stopped rounds chosen on 3 "
    "expanding time-ordered folds inside the training clicks (validating on 40-60, 60-80, "
    "80-100 %), then both refit on all training clicks and averaged; the test clicks are "
    "scored once, ROC AUC interval by stratified bootstrap"
)


class ReliabilityBin(msgspec.Struct, kw_only=True):
    low: float
    high: float
    clicks: int
    mean_predicted: float | None  # None for an empty bin
    observed_rate: float | None


class ModelResult(msgspec.Struct, kw_only=True):
    name: str
    roc_auc: float
    roc_auc_low: float  # stratified bootstrap 95 % interval
    roc_auc_high: float
    pr_auc: float
    log_loss: float
    brier: float
    ece: float
    reliability: list[ReliabilityBin]


class Candidate(msgspec.Struct, kw_only=True):
    """One booster setting as measured on the validation folds (never the test)."""

    encoding: str  # "categorical" or "ordinal"
    class_weight: str  # "none" or "balanced"
    rounds: int  # the early-stopped number of boosting rounds
    validation_roc_auc: float | None  # mean over the folds at those rounds; None: no folds
    chosen: bool = False


class ConversionReport(msgspec.Struct, kw_only=True):
    train: str
    test: str
    train_clicks: int
    train_conversions: int
    test_clicks: int
    test_conversions: int
    class_weight: str  # the chosen one, per encoding when they differ
    selection_roc_auc: dict[str, float]  # "encoding/class weight": validation ROC AUC
    protocol: str
    validation_folds: int  # the folds that had both classes
    candidates: list[Candidate]
    # The chosen boosters' average (the final model) on the same folds; None: no folds.
    averaged_validation_roc_auc: float | None
    models: list[ModelResult]

    def to_json(self) -> bytes:
        return msgspec.json.format(msgspec.json.encode(self), indent=2)


def _booster(encoding: str, class_weight: str, rounds: int) -> Any:
    return HistGradientBoostingClassifier(
        learning_rate=0.05,
        max_iter=rounds,
        max_leaf_nodes=4,
        min_samples_leaf=20,
        l2_regularization=1.0,
        categorical_features=list(range(len(CATEGORICAL))) if encoding == "categorical" else None,
        class_weight=None if class_weight == "none" else class_weight,
        # Stopped on the time-ordered folds instead (``select``): the built-in early
        # stopping would hold out a random, not a later, slice.
        early_stopping=False,
        random_state=SEED,
    )


def _fit(model: Any, x: FloatArray, labels: IntArray) -> Any:
    """``model.fit``, with any all-missing column (e.g. no repeat clicks in a short
    fitting part) set to 0: scikit-learn's binning fails on a column without a single
    value. A constant column is never split on, so the model is the same otherwise."""
    empty = np.isnan(x).all(axis=0)
    if empty.any():
        x = x.copy()
        x[:, empty] = 0.0
    return model.fit(x, labels)


def _has_both_classes(labels: IntArray) -> bool:
    return 0 < int(labels.sum()) < labels.size


def _unweighted(predicted: FloatArray, class_weight: str, labels: IntArray) -> FloatArray:
    """Undo the balanced weighting's shift of the odds (by negatives / positives)."""
    if class_weight == "none":
        return predicted
    positives = float(labels.sum())
    odds = predicted / np.maximum(1.0 - predicted, 1e-12) * positives / (labels.size - positives)
    out: FloatArray = odds / (1.0 + odds)
    return out


def select(train: Clicks, context: FloatArray) -> tuple[list[Candidate], int, float | None]:
    """Each encoding x class weight, early-stopped on the folds inside ``train`` (its
    ``context_features`` given); the better class weight per encoding is marked chosen.
    Returns the candidates, the number of folds that had both classes, and the mean
    validation ROC AUC of the chosen boosters' average (the final model), None without
    folds."""
    curves: dict[tuple[str, str], list[list[float]]] = {
        (e, w): [] for e in ENCODINGS for w in CLASS_WEIGHTS
    }
    # Per candidate and fold: the (corrected) validation predictions every _ROUND_STEP.
    staged: dict[tuple[str, str], list[list[FloatArray]]] = {key: [] for key in curves}
    checks: list[IntArray] = []
    for fit_share, check_share in FOLDS:
        cut, end = round(len(train) * fit_share), round(len(train) * check_share)
        fit_y, check_y = train.label[:cut], train.label[cut:end]
        if not (_has_both_classes(fit_y) and _has_both_classes(check_y)):
            continue
        checks.append(check_y)
        codes = CategoryCodes(train.take(slice(0, cut)))
        x = np.hstack((codes.encode(train.take(slice(0, end))), context[:end]))
        for (encoding, weight), curve in curves.items():
            model = _fit(_booster(encoding, weight, _MAX_ROUNDS), x[:cut], fit_y)
            stages = [
                _unweighted(p[:, 1], weight, fit_y)
                for i, p in enumerate(model.staged_predict_proba(x[cut:]), start=1)
                if i % _ROUND_STEP == 0
            ]
            staged[encoding, weight].append(stages)
            curve.append([float(roc_auc_score(check_y, p)) for p in stages])
    candidates = []
    for (encoding, weight), curve in curves.items():
        mean = np.mean(curve, axis=0) if curve else None
        best = 0 if mean is None else int(np.argmax(mean))  # the first best: fewest rounds
        candidates.append(
            Candidate(
                encoding=encoding,
                class_weight=weight,
                rounds=_DEFAULT_ROUNDS if mean is None else (best + 1) * _ROUND_STEP,
                validation_roc_auc=None if mean is None else float(mean[best]),
            )
        )
    for encoding in ENCODINGS:
        # Ties (or no folds at all) keep "none", listed first: unweighted probabilities
        # need no correction.
        options = [c for c in candidates if c.encoding == encoding]
        max(options, key=lambda c: c.validation_roc_auc or 0.0).chosen = True
    if not checks:
        return candidates, 0, None
    # Each chosen booster's fold predictions at its chosen rounds, then their average.
    picked = [
        [stages[c.rounds // _ROUND_STEP - 1] for stages in staged[c.encoding, c.class_weight]]
        for c in candidates
        if c.chosen
    ]
    averaged = [
        roc_auc_score(check_y, np.mean([folds[f] for folds in picked], axis=0))
        for f, check_y in enumerate(checks)
    ]
    return candidates, len(checks), float(np.mean(averaged))


def calendar_one_hot(clicks: Clicks) -> FloatArray:
    """24 hour-of-day columns then 7 day-of-week columns, one-hot (the baseline's input)."""
    out = np.zeros((len(clicks), 24 + 7), dtype=np.float64)
    rows = np.arange(len(clicks))
    out[rows, hour_of_day(clicks)] = 1.0
    out[rows, 24 + day_of_week(clicks)] = 1.0
    return out


def score(name: str, labels: IntArray, predicted: FloatArray) -> ModelResult:
    bins = reliability(labels, predicted)
    ece = sum(
        b.clicks * abs(b.mean_predicted - b.observed_rate)
        for b in bins
        if b.mean_predicted is not None and b.observed_rate is not None
    ) / max(1, labels.size)
    low, high = roc_auc_interval(labels, predicted)
    return ModelResult(
        name=name,
        roc_auc=float(roc_auc_score(labels, predicted)),
        roc_auc_low=low,
        roc_auc_high=high,
        pr_auc=float(average_precision_score(labels, predicted)),
        log_loss=float(log_loss(labels, predicted, labels=[0, 1])),
        brier=float(brier_score_loss(labels, predicted)),
        ece=float(ece),
        reliability=bins,
    )


def roc_auc_interval(
    labels: IntArray, predicted: FloatArray, rounds: int = BOOTSTRAP_ROUNDS, seed: int = SEED
) -> tuple[float, float]:
    """A stratified bootstrap 95 % interval of the ROC AUC (percentiles 2.5 and 97.5).

    Each round resamples the positives and the negatives separately, with replacement.
    The AUC of a round is the share of (positive, negative) pairs ranked right, ties
    half: with the negatives sorted once, that is a running count over how many times
    each negative was drawn, so a round costs one pass instead of a sort.
    """
    positive = predicted[labels == 1]
    negative = np.sort(predicted[labels == 0])
    below = np.searchsorted(negative, positive, side="left")
    up_to = np.searchsorted(negative, positive, side="right")
    rng = np.random.default_rng(seed)
    aucs = np.empty(rounds)
    for r in range(rounds):
        drawn = np.bincount(rng.integers(0, negative.size, negative.size), minlength=negative.size)
        running = np.concatenate(([0], np.cumsum(drawn)))
        pick = rng.integers(0, positive.size, positive.size)
        lower, tied = running[below[pick]], running[up_to[pick]] - running[below[pick]]
        aucs[r] = (lower + 0.5 * tied).sum() / (positive.size * negative.size)
    low, high = np.percentile(aucs, (2.5, 97.5))
    return float(low), float(high)


def reliability(labels: IntArray, predicted: FloatArray) -> list[ReliabilityBin]:
    """Equal-width probability bins: mean prediction vs the observed conversion rate."""
    which = np.minimum((predicted * BINS).astype(np.int64), BINS - 1)
    out = []
    for b in range(BINS):
        inside = which == b
        n = int(inside.sum())
        out.append(
            ReliabilityBin(
                low=b / BINS,
                high=(b + 1) / BINS,
                clicks=n,
                mean_predicted=float(predicted[inside].mean()) if n else None,
                observed_rate=float(labels[inside].mean()) if n else None,
            )
        )
    return out


def evaluate(train: Clicks, test: Clicks, train_name: str, test_name: str) -> ConversionReport:
    """Fit both models on ``train`` and measure them on ``test`` (which comes later)."""
    for name, clicks in ((train_name, train), (test_name, test)):
        if not _has_both_classes(clicks.label):
            raise ValueError(f"{name}: needs both converted and unconverted clicks")
    # One OpenMP thread: these trees are tiny, so threads mostly wait on each other, and
    # on a busy machine their spinning turned a 25 s run into 4 minutes. Same model.
    with threadpool_limits(limits=1, user_api="openmp"):
        return _evaluate(train, test, train_name, test_name)


def _evaluate(train: Clicks, test: Clicks, train_name: str, test_name: str) -> ConversionReport:
    history = ClickHistory()
    train_context = context_features(train, history)
    test_context = context_features(test, history)  # continues from the training clicks
    candidates, folds, averaged = select(train, train_context)
    chosen = [c for c in candidates if c.chosen]
    codes = CategoryCodes(train)
    train_x = np.hstack((codes.encode(train), train_context))
    test_x = np.hstack((codes.encode(test), test_context))
    predicted = np.mean(
        [
            _unweighted(
                _fit(
                    _booster(c.encoding, c.class_weight, c.rounds), train_x, train.label
                ).predict_proba(test_x)[:, 1],
                c.class_weight,
                train.label,
            )
            for c in chosen
        ],
        axis=0,
    )
    baseline = LogisticRegression(max_iter=1_000).fit(calendar_one_hot(train), train.label)
    weights = {c.class_weight for c in chosen}
    return ConversionReport(
        train=train_name,
        test=test_name,
        train_clicks=len(train),
        train_conversions=int(train.label.sum()),
        test_clicks=len(test),
        test_conversions=int(test.label.sum()),
        class_weight=weights.pop()
        if len(weights) == 1
        else ", ".join(f"{c.encoding}: {c.class_weight}" for c in chosen),
        selection_roc_auc={
            f"{c.encoding}/{c.class_weight}": c.validation_roc_auc
            for c in candidates
            if c.validation_roc_auc is not None
        },
        protocol=PROTOCOL,
        validation_folds=folds,
        candidates=candidates,
        averaged_validation_roc_auc=averaged,
        models=[
            score("gradient boosting", test.label, predicted),
            score(
                "baseline: hour+weekday logistic",
                test.label,
                baseline.predict_proba(calendar_one_hot(test))[:, 1],
            ),
        ],
    )


def format_report(report: ConversionReport) -> str:
    console = Console(file=io.StringIO(), width=110, color_system=None)
    console.print(
        f"train {report.train}: {report.train_clicks} clicks, "
        f"{report.train_conversions} conversions; test {report.test}: "
        f"{report.test_clicks} clicks, {report.test_conversions} conversions "
        f"(positives); class weight: {report.class_weight}"
    )
    console.print(f"protocol: {report.protocol}")
    chosen = Table(
        "booster", "class weight", "rounds", "validation ROC AUC", "", title="model selection"
    )
    for c in report.candidates:
        auc = "—" if c.validation_roc_auc is None else f"{c.validation_roc_auc:.4f}"
        chosen.add_row(c.encoding, c.class_weight, str(c.rounds), auc, "chosen" if c.chosen else "")
    averaged = report.averaged_validation_roc_auc
    chosen.add_row(
        "average of the chosen", "", "", "—" if averaged is None else f"{averaged:.4f}", "final"
    )
    console.print(chosen)
    summary = Table("model", "ROC AUC", "95 % interval", "PR AUC", "log loss", "Brier", "ECE")
    for m in report.models:
        summary.add_row(
            m.name,
            f"{m.roc_auc:.4f}",
            f"{m.roc_auc_low:.3f}–{m.roc_auc_high:.3f}",
            *(f"{v:.4f}" for v in (m.pr_auc, m.log_loss, m.brier, m.ece)),
        )
    console.print(summary)
    for m in report.models:
        table = Table("bin", "clicks", "mean predicted", "observed", title=f"reliability: {m.name}")
        for b in m.reliability:
            table.add_row(
                f"{b.low:.1f}–{b.high:.1f}",
                str(b.clicks),
                "—" if b.mean_predicted is None else f"{b.mean_predicted:.4f}",
                "—" if b.observed_rate is None else f"{b.observed_rate:.4f}",
            )
        console.print(table)
    output = console.file
    assert isinstance(output, io.StringIO)
    return output.getvalue()


def run_eval_conversion(
    train: Path | None, test: Path | None, split: float | None, file: Path | None, as_json: bool
) -> int:
    """``usertide eval conversion``: either --train and --test, or --split-by-time FILE."""
    try:
        if split is not None:
            if file is None or train is not None or test is not None:
                raise _Usage("--split-by-time takes one FILE (and no --train/--test)")
            early, late = split_by_time(_read(file), split)
            name = str(file)
            report = evaluate(early, late, f"{name} (first {split:g})", f"{name} (rest)")
        else:
            if train is None or test is None or file is not None:
                raise _Usage("give --train F --test F, or --split-by-time FRACTION FILE")
            report = evaluate(_read(train), _read(test), str(train), str(test))
    except (_Usage, ValueError) as exc:
        print(f"usertide eval conversion: {exc}", file=sys.stderr)
        return 2
    if as_json:
        sys.stdout.write(report.to_json().decode() + "\n")
    else:
        sys.stdout.write(format_report(report))
    return 0


class _Usage(Exception):
    pass


def _read(path: Path) -> Clicks:
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    return read_clicks(path)
