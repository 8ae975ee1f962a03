"""What a session model knows about the sessions it was fitted on: its thresholds and
each feature's percentiles, from which a detection's reasons are written.

Reasons compare a session with the population, as a person would: "43 page views per
minute, above the 99.9th percentile of 9". A feature is named when it lies beyond the
99th percentile on its suspicious side (above, or below for the features where bots
are low, such as the variation of their gaps).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec
import numpy as np

from usertide.anomaly.base import Matrix
from usertide.events.reason import Reason

LEVELS: Final = (0.1, 1.0, 50.0, 99.0, 99.9)  # the percentiles kept per feature
MEDIUM_QUANTILE: Final = 0.99  # training scores above: "Anomaly" (the top 1 %)
HIGH_QUANTILE: Final = 0.999
MAX_REASONS: Final = 3

# How each feature reads, and on which side it is suspicious (+1 high, -1 low).
WORDING: Final[dict[str, tuple[str, int]]] = {
    "clicks_per_minute": ("{v} events in the last minute", 1),
    "page_views_per_minute": ("{v} page views per minute", 1),
    "session_clicks_per_minute": ("{v} events per minute over the session", 1),
    "pages_per_session": ("{v} pages in the session", 1),
    "session_duration_seconds": ("a session of {v} s", 1),
    "gap_mean_seconds": ("{v} s between events on average", -1),
    "gap_cv": ("regular timing (gap variation {v})", -1),
    "distinct_pages_ratio": ("{v} of the pages distinct", 1),
    "no_referrer_share": ("{v} of page views without a referrer", 1),
    "error_page_share": ("{v} of page views on error pages", 1),
    "peak_requests_per_second": ("{v} requests in one second", 1),
    "night_share": ("{v} of events at night, local time", 1),
    "automation_agent": ("an automation or bot user agent", 1),
    "data_centre_network": ("traffic from a data-centre network", 1),
    "login_failures": ("{v} failed sign-ins", 1),
    "add_to_cart": ("{v} add-to-cart events", 1),
    "purchases": ("{v} purchases", 1),
    "ad_click_share": ("{v} of events ad clicks", 1),
}


class ModelCard(msgspec.Struct, kw_only=True):
    features: list[str]
    rows: int
    medium: float  # score thresholds
    high: float
    percentiles: dict[str, list[float]]  # feature → values at LEVELS
    medians: list[float]  # per feature: what stands in for a missing one
    trained_from: str | None = None  # the training window (ISO times)
    trained_to: str | None = None
    metrics: dict[str, float] = msgspec.field(default_factory=dict)

    def label(self, score: float) -> str:
        return "Anomaly" if score >= self.medium else "Normal"

    def level(self, score: float) -> str | None:
        if score >= self.high:
            return "high"
        return "medium" if score >= self.medium else None

    def reasons(self, x: Sequence[float]) -> tuple[Reason, ...]:
        found: list[tuple[float, Reason]] = []
        for name, value in zip(self.features, x, strict=True):
            reason = self._reason(name, value)
            if reason is not None:
                found.append(reason)
        found.sort(key=lambda pair: -pair[0])
        return tuple(reason for _, reason in found[:MAX_REASONS])

    def _reason(self, name: str, value: float) -> tuple[float, Reason] | None:
        wording, side = WORDING.get(name, (f"{name} {{v}}", 1))
        p = self.percentiles.get(name)
        if p is None:
            return None
        p01, p1, p50, p99, p999 = p
        where = "above" if side > 0 else "below"
        if side > 0 and value > p99 and value > p50:
            level, bound = ("99.9th", p999) if value > p999 else ("99th", p99)
        elif side < 0 and value < p1 and value < p50:
            level, bound = ("0.1th", p01) if value < p01 else ("1st", p1)
        else:
            return None
        spread = max(abs(p99 - p1), 1e-9)
        extremity = abs(value - p50) / spread + (1.0 if level in ("99.9th", "0.1th") else 0.0)
        text = wording.format(v=_number(value))
        if "{v}" in wording:
            message = f"{text}, {where} the {level} percentile of {_number(bound)}"
        else:
            share = "99" if level == "99th" else "99.9"
            message = f"{text} (rarer than {share} % of sessions)"
        return extremity, Reason(
            code=f"{'high' if side > 0 else 'low'}_{name}",
            message=message,
            data={"feature": name, "value": value, "percentile": level, "bound": bound},
        )

    def fill(self, given: dict[str, float]) -> list[float]:
        """A full feature vector from some features: the missing ones at the median."""
        pairs = zip(self.features, self.medians, strict=True)
        return [given.get(name, median) for name, median in pairs]

    def to_builtins(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out


def build_card(features: Sequence[str], X: Matrix, scores: Matrix, **extra: Any) -> ModelCard:
    """The card of a model fitted on ``X`` whose training scores are ``scores``."""
    table = np.percentile(X, LEVELS, axis=0)  # len(LEVELS) x n_features
    return ModelCard(
        features=list(features),
        rows=len(X),
        medium=float(np.quantile(scores, MEDIUM_QUANTILE)),
        high=float(np.quantile(scores, HIGH_QUANTILE)),
        percentiles={name: [float(v) for v in table[:, j]] for j, name in enumerate(features)},
        medians=[float(v) for v in np.median(X, axis=0)],
        **extra,
    )


def _number(value: float) -> str:
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}"
    return f"{value:.2f}"
