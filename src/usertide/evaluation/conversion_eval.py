"""Conversion propensity: which ad clicks lead to a download (issue 11).

``usertide eval conversion --train F --test F`` fits a gradient-boosted model on the
click history features of ``conversion_features`` (no look-ahead) and, in the same run,
the original design's baseline: a logistic regression on the hour of day and the day of
week, both one-hot. Both are scored on the test file: ROC AUC, PR AUC (average
precision), log loss, and calibration (Brier score, a 10-bin reliability table and the
expected calibration error). ``--split-by-time 0.7 FILE`` trains on the earliest 70 % of
one file and tests on the rest.
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

from usertide.evaluation.conversion_features import (
    CATEGORICAL,
    CategoryCodes,
    ClickHistory,
    Clicks,
    FloatArray,
    IntArray,
    day_of_week,
    hour_of_day,
    model_features,
    read_clicks,
    split_by_time,
)

SEED: Final = 11
BINS: Final = 10
# The share of the training clicks (the latest ones) held out to choose the class weight.
_SELECTION_FRACTION: Final = 0.25


class ReliabilityBin(msgspec.Struct, kw_only=True):
    low: float
    high: float
    clicks: int
    mean_predicted: float | None  # None for an empty bin
    observed_rate: float | None


class ModelResult(msgspec.Struct, kw_only=True):
    name: str
    roc_auc: float
    pr_auc: float
    log_loss: float
    brier: float
    ece: float
    reliability: list[ReliabilityBin]


class ConversionReport(msgspec.Struct, kw_only=True):
    train: str
    test: str
    train_clicks: int
    train_conversions: int
    test_clicks: int
    test_conversions: int
    class_weight: str  # "balanced" or "none", chosen on the training clicks only
    selection_roc_auc: dict[str, float]  # that choice's validation ROC AUC per option
    models: list[ModelResult]

    def to_json(self) -> bytes:
        return msgspec.json.format(msgspec.json.encode(self), indent=2)


def _booster(class_weight: str | None) -> Any:
    return HistGradientBoostingClassifier(
        learning_rate=0.05,
        max_iter=300,
        max_leaf_nodes=15,
        min_samples_leaf=40,
        l2_regularization=1.0,
        categorical_features=list(range(len(CATEGORICAL))),
        class_weight=class_weight,
        # No early stopping: with ~100 conversions a random validation slice is too noisy
        # to stop on, and a fixed number of rounds keeps the run reproducible.
        early_stopping=False,
        random_state=SEED,
    )


def _has_both_classes(labels: IntArray) -> bool:
    return 0 < int(labels.sum()) < labels.size


def choose_class_weight(features: FloatArray, labels: IntArray) -> tuple[str, dict[str, float]]:
    """Fit with and without ``class_weight="balanced"`` on the earlier training clicks and
    keep the better ROC AUC on the later ones (never the test file)."""
    cut = round(labels.size * (1.0 - _SELECTION_FRACTION))
    fit_y, check_y = labels[:cut], labels[cut:]
    if not (_has_both_classes(fit_y) and _has_both_classes(check_y)):
        return "none", {}
    scores: dict[str, float] = {}
    for option in ("none", "balanced"):
        model = _booster(None if option == "none" else option).fit(features[:cut], fit_y)
        scores[option] = float(roc_auc_score(check_y, model.predict_proba(features[cut:])[:, 1]))
    # Ties keep "none": unweighted probabilities stay calibrated.
    return ("balanced" if scores["balanced"] > scores["none"] else "none"), scores


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
    return ModelResult(
        name=name,
        roc_auc=float(roc_auc_score(labels, predicted)),
        pr_auc=float(average_precision_score(labels, predicted)),
        log_loss=float(log_loss(labels, predicted, labels=[0, 1])),
        brier=float(brier_score_loss(labels, predicted)),
        ece=float(ece),
        reliability=bins,
    )


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
    codes, history = CategoryCodes(train), ClickHistory()
    train_x = model_features(train, codes, history)
    test_x = model_features(test, codes, history)  # counts continue from the training file
    weight, selection = choose_class_weight(train_x, train.label)
    booster = _booster(None if weight == "none" else weight).fit(train_x, train.label)
    baseline = LogisticRegression(max_iter=1_000).fit(calendar_one_hot(train), train.label)
    return ConversionReport(
        train=train_name,
        test=test_name,
        train_clicks=len(train),
        train_conversions=int(train.label.sum()),
        test_clicks=len(test),
        test_conversions=int(test.label.sum()),
        class_weight=weight,
        selection_roc_auc=selection,
        models=[
            score("gradient boosting", test.label, booster.predict_proba(test_x)[:, 1]),
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
        f"{report.test_clicks} clicks, {report.test_conversions} conversions; "
        f"class weight: {report.class_weight}"
    )
    summary = Table("model", "ROC AUC", "PR AUC", "log loss", "Brier", "ECE")
    for m in report.models:
        summary.add_row(
            m.name, *(f"{v:.4f}" for v in (m.roc_auc, m.pr_auc, m.log_loss, m.brier, m.ece))
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
