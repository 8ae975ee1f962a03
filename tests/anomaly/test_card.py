"""Model cards: thresholds from the training scores, reasons against percentiles."""

from __future__ import annotations

import numpy as np
import pytest

from usertide.anomaly.card import build_card


def card():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    X = np.column_stack(
        [rng.poisson(4, 5000).astype(float), rng.uniform(0.5, 1.5, 5000), np.zeros(5000)]
    )
    scores = rng.uniform(0.3, 0.7, 5000)
    return build_card(["page_views_per_minute", "gap_cv", "automation_agent"], X, scores), X, scores


def test_thresholds_are_the_training_score_quantiles() -> None:
    c, _, scores = card()
    assert c.medium == pytest.approx(np.quantile(scores, 0.99))
    assert c.high == pytest.approx(np.quantile(scores, 0.999))
    assert c.label(c.medium) == "Anomaly" and c.label(c.medium - 1e-9) == "Normal"
    assert c.level(c.high) == "high" and c.level(c.medium) == "medium"
    assert c.level(0.0) is None


def test_reasons_name_the_extreme_features_on_their_suspicious_side() -> None:
    c, X, _ = card()
    p999 = np.percentile(X[:, 0], 99.9)
    reasons = c.reasons([43.0, 0.02, 1.0])
    codes = [r.code for r in reasons]
    assert codes[:1] == ["high_page_views_per_minute"] or "high_page_views_per_minute" in codes
    assert "low_gap_cv" in codes
    message = next(r.message for r in reasons if r.code == "high_page_views_per_minute")
    assert message == f"43 page views per minute, above the 99.9th percentile of {p999:,.0f}"
    gap = next(r.message for r in reasons if r.code == "low_gap_cv")
    assert gap.startswith("regular timing (gap variation 0.02), below the 0.1th percentile")
    # typical values, and a high gap variation (not suspicious), give no reason
    assert c.reasons([4.0, 5.0, 0.0]) == ()


def test_missing_features_stand_at_the_median() -> None:
    c, X, _ = card()
    filled = c.fill({"gap_cv": 0.1})
    assert filled == [float(np.median(X[:, 0])), 0.1, 0.0]
