"""A fitted ``HistGradientBoostingClassifier`` (binary, numeric features) as plain arrays.

scikit-learn offers only pickle to store a model; a stored model here must be data. The
trees' nodes (feature, threshold, which way a missing value goes, children, leaf
values) and the baseline are written as numeric arrays in an ``.npz`` with a JSON
header, loaded with ``allow_pickle=False`` and validated. Prediction walks the trees
with numpy as scikit-learn does (``x <= threshold`` goes left, NaN follows
``missing_go_to_left``) and sums the leaf values onto the baseline: the same
probability as ``predict_proba`` (checked to 1e-9 in the tests).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from usertide.models import arrays

FORMAT = "usertide-boosted-1"
_ARRAYS = ("feature", "threshold", "missing_left", "left", "right", "leaf", "value", "roots")
_KINDS = {
    name: "f"
    if name in ("threshold", "value")
    else "b"
    if name in ("missing_left", "leaf")
    else "i"
    for name in _ARRAYS
}
Floats = npt.NDArray[np.float64]


class BoostedTrees:
    def __init__(self, arrays: dict[str, np.ndarray], baseline: float, n_features: int) -> None:
        self.feature = arrays["feature"].astype(np.int64)
        self.threshold = arrays["threshold"].astype(np.float64)
        self.missing_left = arrays["missing_left"].astype(bool)
        self.left = arrays["left"].astype(np.int64)
        self.right = arrays["right"].astype(np.int64)
        self.leaf = arrays["leaf"].astype(bool)
        self.value = arrays["value"].astype(np.float64)
        self.roots = arrays["roots"].astype(np.int64)
        self.baseline = float(baseline)
        self.n_features = int(n_features)
        self._validate()

    @classmethod
    def from_sklearn(cls, model: Any) -> BoostedTrees:
        from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped]

        if (
            not isinstance(model, HistGradientBoostingClassifier)
            or model.n_trees_per_iteration_ != 1
        ):
            raise TypeError("expected a fitted binary HistGradientBoostingClassifier")
        if getattr(model, "is_categorical_", None) is not None and model.is_categorical_.any():
            raise TypeError("categorical features are not supported")
        parts: dict[str, list[np.ndarray]] = {name: [] for name in _ARRAYS if name != "roots"}
        roots, start = [], 0
        for (predictor,) in model._predictors:
            nodes = predictor.nodes
            roots.append(start)
            leaf = nodes["is_leaf"].astype(bool)
            parts["feature"].append(np.where(leaf, -1, nodes["feature_idx"]))
            parts["threshold"].append(np.where(leaf, 0.0, nodes["num_threshold"]))
            parts["missing_left"].append(nodes["missing_go_to_left"].astype(bool))
            parts["left"].append(np.where(leaf, -1, nodes["left"].astype(np.int64) + start))
            parts["right"].append(np.where(leaf, -1, nodes["right"].astype(np.int64) + start))
            parts["leaf"].append(leaf)
            parts["value"].append(np.where(leaf, nodes["value"], 0.0))
            start += len(nodes)
        arrays = {name: np.concatenate(chunks) for name, chunks in parts.items()}
        arrays["roots"] = np.asarray(roots, dtype=np.int64)
        baseline = float(np.asarray(model._baseline_prediction).ravel()[0])
        return cls(arrays, baseline, int(model.n_features_in_))

    def _validate(self) -> None:
        n = len(self.feature)
        if any(len(a) != n for a in (self.threshold, self.missing_left, self.left, self.right,
                                     self.leaf, self.value)):  # fmt: skip
            raise ValueError("node arrays of different lengths")
        inner = ~self.leaf
        if np.any((self.feature[inner] < 0) | (self.feature[inner] >= self.n_features)):
            raise ValueError("a split on a feature the model does not have")
        for children in (self.left[inner], self.right[inner]):
            if np.any((children <= np.flatnonzero(inner)) | (children >= n)):
                raise ValueError("a child index out of order or out of range")
        if len(self.roots) and (np.any(self.roots < 0) or np.any(self.roots >= n)):
            raise ValueError("a root index out of range")
        if not np.all(np.isfinite(self.value)) or not np.isfinite(self.baseline):
            raise ValueError("non-finite values")

    def raw(self, X: npt.ArrayLike) -> Floats:
        rows = np.asarray(X, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features")
        total = np.full(len(rows), self.baseline)
        at = np.arange(len(rows))
        for root in self.roots:
            node = np.full(len(rows), root)
            while True:
                inner = ~self.leaf[node]
                if not inner.any():
                    break
                feature = np.where(inner, self.feature[node], 0)
                x = rows[at, feature]
                left = np.where(np.isnan(x), self.missing_left[node], x <= self.threshold[node])
                node = np.where(inner, np.where(left, self.left[node], self.right[node]), node)
            total += self.value[node]
        return total

    def probability(self, X: npt.ArrayLike) -> Floats:
        p: Floats = 1.0 / (1.0 + np.exp(-self.raw(X)))
        return p

    def to_bytes(self) -> bytes:
        header = {"format": FORMAT, "baseline": self.baseline, "n_features": self.n_features}
        return arrays.write(header, {name: getattr(self, name) for name in _ARRAYS})

    @classmethod
    def from_bytes(cls, data: bytes) -> BoostedTrees:
        header, stored = arrays.read(data, _KINDS, "a stored boosted model")
        baseline, n_features = header.get("baseline"), header.get("n_features")
        if (
            header.get("format") != FORMAT
            or not isinstance(baseline, float | int)
            or not isinstance(n_features, int)
            or isinstance(n_features, bool)
        ):
            raise ValueError("not a stored boosted model")
        return cls(stored, float(baseline), n_features)
