"""The textbook baseline: a per-user one-class SVM over one-hot country and browser.

For each user, a scikit-learn ``OneClassSVM`` (RBF kernel, ``nu=0.1``, ``gamma="scale"``)
is fitted on the user's past successful sign-ins, each encoded as one-hot country (from
``GeoIPEnricher().lookup(ip).country``) and one-hot browser family (from
``parse_user_agent(ua).browser``); the vocabulary is the user's own, so a country or
browser the user never used encodes as all zeros in its block (scikit-learn's
``OneHotEncoder(handle_unknown="ignore")``). The score is the sigmoid of minus the
decision function: 0.5 on the learned boundary, higher outside it. (A user who always
signs in with the same country and browser has every training point on the boundary, so
their usual sign-in scores exactly 0.5, the same as the neutral score below.)

Choices a textbook leaves open, made here:

- A user with fewer than ``MIN_HISTORY`` (3) past successful sign-ins, including every
  unknown account name, gets the neutral score 0.5: there is nothing to fit yet.
- The history is the user's last ``HISTORY_WINDOW`` (50) successful sign-ins, like any
  bounded per-user state.
- It learns from *every* successful sign-in, flagged or not (the textbook setup, which an
  attacker who got in once can exploit); failed attempts teach it nothing.
- The model depends only on the multiset of (country, browser) pairs in the window, so
  fitted models and their scores are cached by that multiset and shared by all users with
  the same pattern; a user's model is refitted only when their multiset changes and no
  other user already had it. This is exact, just faster.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict, deque
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import sklearn  # type: ignore[import-untyped]
from sklearn.svm import OneClassSVM  # type: ignore[import-untyped]

from usertide.enrich import GeoIPEnricher, parse_user_agent

MIN_HISTORY: Final = 3
HISTORY_WINDOW: Final = 50
NEUTRAL_SCORE: Final = 0.5
MODEL_CACHE_SIZE: Final = 20_000

Row = tuple[str | None, str | None]  # (country, browser family)
HistoryKey = tuple[tuple[Row, int], ...]  # the window as a sorted multiset
Matrix = npt.NDArray[np.float64]


class _History:
    __slots__ = ("counts", "window")

    def __init__(self) -> None:
        self.window: deque[Row] = deque(maxlen=HISTORY_WINDOW)
        self.counts: Counter[Row] = Counter()

    def add(self, row: Row) -> None:
        if len(self.window) == self.window.maxlen:
            dropped = self.window[0]
            self.counts[dropped] -= 1
            if not self.counts[dropped]:
                del self.counts[dropped]
        self.window.append(row)
        self.counts[row] += 1

    def key(self) -> HistoryKey:
        return tuple(sorted(self.counts.items(), key=_sortable))


class UserModel:
    """One fitted one-class SVM for one history multiset, with its scores memoised.

    ``gamma`` is scikit-learn's ``"scale"`` rule, 1 / (features * X.var()), computed here
    so that the decision function can be evaluated without scikit-learn's per-call input
    validation (which costs ~50 times the arithmetic on these tiny inputs):
    sum_i dual_coef_i * exp(-gamma * |sv_i - x|^2) + intercept, as ``decision_function``.
    """

    __slots__ = ("_coef", "_gamma", "_intercept", "_vectors", "browsers", "countries", "scores")

    def __init__(self, key: HistoryKey, nu: float) -> None:
        self.countries = sorted({row[0] for row, _ in key}, key=str)
        self.browsers = sorted({row[1] for row, _ in key}, key=str)
        matrix = self.encode([row for row, count in key for _ in range(count)])
        variance = float(matrix.var())
        self._gamma = 1.0 / (matrix.shape[1] * variance) if variance > 0 else 1.0
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            svm = OneClassSVM(nu=nu, kernel="rbf", gamma=self._gamma).fit(matrix)
        self._vectors: Matrix = svm.support_vectors_
        self._coef: Matrix = svm.dual_coef_[0]
        self._intercept = float(svm.intercept_[0])
        self.scores: dict[Row, float] = {}

    def score(self, row: Row) -> float:
        cached = self.scores.get(row)
        if cached is None:
            cached = self.scores[row] = _sigmoid(-self.decision(self.encode([row])[0]))
        return cached

    def decision(self, x: Matrix) -> float:
        distances = ((self._vectors - x) ** 2).sum(axis=1)
        return float(self._coef @ np.exp(-self._gamma * distances)) + self._intercept

    def encode(self, rows: list[Row]) -> Matrix:
        width = len(self.countries) + len(self.browsers)
        matrix = np.zeros((len(rows), width), dtype=np.float64)
        country_at = {c: i for i, c in enumerate(self.countries)}
        browser_at = {b: len(self.countries) + i for i, b in enumerate(self.browsers)}
        for i, (country, browser) in enumerate(rows):
            if country in country_at:
                matrix[i, country_at[country]] = 1.0
            if browser in browser_at:
                matrix[i, browser_at[browser]] = 1.0
        return matrix


class OneClassSVMBaseline:
    """Per-user one-class SVM over one-hot country and browser (see the module docs)."""

    name = "one-class SVM (country, browser)"

    def __init__(self, nu: float = 0.1, geo: GeoIPEnricher | None = None) -> None:
        self.nu = nu
        self._geo = geo or GeoIPEnricher()
        self._histories: dict[str, _History] = {}
        self._models: OrderedDict[HistoryKey, UserModel] = OrderedDict()
        self.fits = 0  # models fitted so far (cache misses)

    def score(self, event: dict[str, Any]) -> float:
        history = self._histories.get(_user_of(event))
        if history is None or len(history.window) < MIN_HISTORY:
            return NEUTRAL_SCORE
        return self._model(history.key()).score(self._row(event))

    def learn(self, event: dict[str, Any], score: float) -> None:
        if (event.get("properties") or {}).get("success") is not True:
            return
        user = _user_of(event)
        history = self._histories.get(user)
        if history is None:
            history = self._histories[user] = _History()
        history.add(self._row(event))

    def _model(self, key: HistoryKey) -> UserModel:
        model = self._models.get(key)
        if model is not None:
            self._models.move_to_end(key)
            return model
        model = self._models[key] = UserModel(key, self.nu)
        self.fits += 1
        if len(self._models) > MODEL_CACHE_SIZE:
            self._models.popitem(last=False)
        return model

    def _row(self, event: dict[str, Any]) -> Row:
        context = event.get("context") or {}
        ip, user_agent = context.get("ip"), context.get("userAgent")
        geo = self._geo.lookup(ip) if isinstance(ip, str) else None
        browser = parse_user_agent(user_agent).browser if isinstance(user_agent, str) else None
        return (geo.country if geo is not None else None, browser)


def _user_of(event: dict[str, Any]) -> str:
    return str(event.get("userId") or event.get("anonymousId") or "")


def _sortable(item: tuple[Row, int]) -> tuple[str, str]:
    (country, browser), _ = item
    return (country or "", browser or "")


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)
