"""Session anomaly by half-space trees (Tan, Ting & Liu 2011): River fits,
:class:`HalfSpaceModel` scores.

What the model is: River's ``anomaly.HalfSpaceTrees`` over the features min/max-scaled
to [0, 1] with the training rows' range (a feature constant in training is shifted, not
scaled, as scikit-learn's ``MinMaxScaler`` does). Each tree halves a random feature's
range at every level, independently of the data; the data only sets the *masses*, how
many of the reference window's rows fell in each node. A row's score walks each tree
from the root, adding ``mass * 2 ** depth`` per node, and stops after the first node
whose mass is under a tenth of the window (or at the leaves); the score is
``1 - total / (n_trees * window * (2 ** (height + 1) - 1))``: in [0, 1], higher = more
anomalous, River's ``score_one`` to the last bit (the totals are integers, so every
float operation on the way is exact). The masses River scores with (``r_mass``) are
those of the last complete window it learned; ``l_mass`` only chooses a path for a
missing feature, which a session never has here, so it is not kept.

How this is "online": River learns one row at a time and pivots its masses every
``window_size`` rows. Here a version is fitted by feeding River the latest
``window_size`` sessions in time order (the rows come oldest first), which leaves
exactly the state that feeding it every session would leave at a window boundary
(earlier windows are overwritten); the rest of the training rows only set the
scaling. So a version describes *recent* traffic, where an isolation forest samples
the whole training period: after a shift in the traffic, the next retrain's masses
follow it. The model that scores is immutable (the engine switches versions at a
point of the log, so a replay scores the same), so between retrains nothing is
learned.

What it does not do: learn between retrains (a drift is followed at the next retrain,
not as it happens); see a value beyond the training range as more than "at the edge"
(every threshold lies strictly inside (0, 1), so a scaled value past 0 or 1 goes where
0 or 1 would: the clip is implicit); cope well with heavy-tailed features (min/max
scaling packs most sessions near 0 and the random halvings then spend levels on empty
space); tell anomalies apart that fill the window (a burst of bots that is most of the
latest sessions becomes normal, as with any mass-based detector); score a missing
(NaN) feature. The trees do not depend on the data at all, so they are the same for
every version with the same seed and number of features.

Speed: the trees are flattened and, like ``forest.py``, compiled into one Python
function of nested conditional expressions for the single-row path (only the nodes a
score can reach are kept: the children of nodes with mass at least a tenth of the
window), and walked level by level with numpy for many rows. Storage is an ``.npz`` of
numeric arrays and a JSON header, loaded with ``allow_pickle=False`` and validated.

Cost of fitting: River builds every node of every tree before it learns a row,
``n_trees * (2 ** (height + 1) - 1)`` objects, of which only a few hundred per model are
kept. The default height is 10, not River's 15: a walk stops where a node holds under a
tenth of the window (25 of 250 rows), which a split that halves the mass reaches by
depth 4 or 5; only splits that leave nearly all rows on one side go deeper. The fit
then takes about a second instead of 15-35 s and 0.5 GB (measured at height 15).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from usertide.anomaly.base import AnomalyModel, Detector, Matrix
from usertide.models import arrays

FORMAT_VERSION = 1
# The single-row scorer nests one parenthesised expression per tree level (CPython's
# parser allows 200), and the score's integer totals must stay exact in a float.
MAX_HEIGHT = 40
_CHUNK_CELLS = 50_000  # row x tree cells walked together by score_many (as forest.py)
_ARRAYS = ("low", "scale", "feature", "threshold", "mass", "left", "roots")

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


class HalfSpaceModel(AnomalyModel):
    """The reachable nodes of the trees as one node table: ``roots[k]`` is tree k's
    root, nodes of a tree are contiguous, an inner node's children are ``left[i]`` and
    ``left[i] + 1`` (after it). ``feature`` is -1 and ``left`` -1 on the nodes where a
    score stops; ``mass`` is every node's reference-window mass (River's ``r_mass``).
    A row is scaled as ``(x - low) / scale`` before it meets the thresholds."""

    kind: ClassVar[str] = "half_space_trees"

    def __init__(
        self,
        *,
        low: npt.ArrayLike,
        scale: npt.ArrayLike,
        feature: npt.ArrayLike,
        threshold: npt.ArrayLike,
        mass: npt.ArrayLike,
        left: npt.ArrayLike,
        roots: npt.ArrayLike,
        height: int,
        window_size: int,
    ) -> None:
        self.low: Floats = np.array(low, dtype=np.float64)
        self.scale: Floats = np.array(scale, dtype=np.float64)
        self.feature: Ints = np.array(feature, dtype=np.int64)
        self.threshold: Floats = np.array(threshold, dtype=np.float64)
        self.mass: Ints = np.array(mass, dtype=np.int64)
        self.left: Ints = np.array(left, dtype=np.int64)
        self.roots: Ints = np.array(roots, dtype=np.int64)
        self.height = height
        self.window_size = window_size
        depth = self._validate()
        self.max_depth = int(depth.max())
        # River's normaliser: every node of every tree holding the whole window
        self.max_score = len(self.roots) * window_size * (2 ** (height + 1) - 1)
        self.value = self._path_totals(depth)
        # for score_many: a node where scores stop is its own next node, testing feature 0
        inner = self.feature >= 0
        self._inner: npt.NDArray[np.bool_] = inner
        self._first: Ints = np.where(inner, self.left, np.arange(len(self.left)))
        self._tested: Ints = np.where(inner, self.feature, 0)
        self._single: Callable[[Sequence[float]], float] | None = None

    @property
    def n_features(self) -> int:
        return len(self.low)

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    @classmethod
    def from_river(cls, hst: Any, low: Floats, scale: Floats) -> HalfSpaceModel:
        """Flatten a River ``HalfSpaceTrees`` that has learned at least one full window
        of rows ``(x - low) / scale`` keyed by column number."""
        if getattr(hst, "_first_window", True) or not hst.trees:
            raise ValueError("the half-space trees have not completed a window yet")
        height, window = int(hst.height), int(hst.window_size)
        size_limit = 0.1 * window  # River's stopping mass, computed as River does
        feature: list[int] = []
        threshold: list[float] = []
        mass: list[int] = []
        left: list[int] = []
        roots: list[int] = []
        for tree in hst.trees:
            roots.append(len(feature))
            queue: deque[tuple[Any, int]] = deque([(tree, 0)])
            while queue:  # breadth first, so that siblings are neighbours
                node, depth = queue.popleft()
                mass.append(int(node.r_mass))
                if depth < height and node.r_mass >= size_limit:
                    left.append(len(feature) + 1 + len(queue))
                    feature.append(int(node.feature))
                    threshold.append(float(node.threshold))
                    queue.extend((child, depth + 1) for child in node.children)
                else:
                    left.append(-1)
                    feature.append(-1)
                    threshold.append(0.0)
        return cls(
            low=low,
            scale=scale,
            feature=feature,
            threshold=threshold,
            mass=mass,
            left=left,
            roots=roots,
            height=height,
            window_size=window,
        )

    def _validate(self) -> Ints:
        """Check the table is what ``from_river`` writes (binary trees whose inner nodes
        are exactly those River's score walks past, with consistent masses), so that
        scoring cannot index out of range, loop or differ from River; return each
        node's depth."""
        n = len(self.feature)
        arrays = (self.feature, self.threshold, self.mass, self.left)
        if n == 0 or any(a.shape != (n,) for a in arrays) or self.roots.ndim != 1:
            raise ValueError("node arrays must be one-dimensional and of one length")
        if self.low.ndim != 1 or len(self.low) == 0 or self.scale.shape != self.low.shape:
            raise ValueError("low and scale must give one number per feature")
        if not (np.all(np.isfinite(self.low)) and np.all(np.isfinite(self.scale))):
            raise ValueError("low and scale must be finite")
        if np.any(self.scale <= 0):
            raise ValueError("scale must be positive")
        for name in ("height", "window_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} must be an integer")
        if not 0 <= self.height <= MAX_HEIGHT or self.window_size < 1:
            raise ValueError(f"height must be 0 to {MAX_HEIGHT} and window_size positive")
        roots = self.roots
        if len(roots) == 0 or roots[0] != 0 or np.any(np.diff(roots) <= 0) or roots[-1] >= n:
            raise ValueError("roots must start at 0 and increase within the node table")
        if len(roots) * self.window_size * 2 ** (self.height + 1) >= 2**53:
            raise ValueError("too many trees or too large a window for exact scores")
        own = np.arange(n)
        end = np.append(roots[1:], n)[np.searchsorted(roots, own, side="right") - 1]
        inner = self.feature >= 0
        if np.any(self.feature >= self.n_features) or np.any(self.feature[~inner] != -1):
            raise ValueError("a node tests a feature out of range")
        first = self.left[inner]
        # children after their parent, inside its tree: no cycles, no escapes
        if np.any((first <= own[inner]) | (first + 1 >= end[inner])):
            raise ValueError("a child lies outside its parent's tree")
        if np.any(self.left[~inner] != -1):
            raise ValueError("a node where scores stop has children")
        parents = np.bincount(np.concatenate([first, first + 1]), minlength=n)
        is_root = np.zeros(n, dtype=bool)
        is_root[roots] = True
        if np.any(parents[is_root] != 0) or np.any(parents[~is_root] != 1):
            raise ValueError("every node but a root must have exactly one parent")
        t = self.threshold[inner]
        if not np.all((t > 0.0) & (t < 1.0)):
            raise ValueError("thresholds must lie strictly between 0 and 1")
        if np.any(self.mass[roots] != self.window_size) or np.any(self.mass < 0):
            raise ValueError("every root must hold the window, and masses are counts")
        if np.any(self.mass[first] + self.mass[first + 1] != self.mass[inner]):
            raise ValueError("an inner node's mass must be its children's")
        depth = np.zeros(n, dtype=np.int64)
        frontier = roots
        while frontier.size:  # ends: every child lies after its parent
            children = self.left[frontier[inner[frontier]]]
            depth[children] = depth[children + 1] = depth[frontier[inner[frontier]]] + 1
            frontier = np.concatenate([children, children + 1])
        walks_on = (self.mass >= 0.1 * self.window_size) & (depth < self.height)
        if np.any(walks_on != inner):
            raise ValueError("inner nodes must be exactly those River's score walks past")
        return depth

    def _path_totals(self, depth: Ints) -> Floats:
        """Per node, the sum of ``mass * 2 ** depth`` from its root to it: what a tree
        adds to the total when a score stops there (an integer, exact as a float)."""
        total = self.mass << depth
        for level in range(self.max_depth):  # parents before children, level by level
            parents = np.flatnonzero((depth == level) & (self.feature >= 0))
            for child in (self.left[parents], self.left[parents] + 1):
                total[child] += total[parents]
        out: Floats = total.astype(np.float64)
        return out

    # -- scoring --------------------------------------------------------------------------

    def score(self, x: Sequence[float]) -> float:
        if isinstance(x, np.ndarray):
            x = x.tolist()  # numpy scalars compare several times slower than floats
        if len(x) != self.n_features:
            raise ValueError(f"expected {self.n_features} features, got {len(x)}")
        total = sum(x)
        if total != total:  # a NaN in x (or +inf and -inf together): find out which
            for i, v in enumerate(x):
                if v != v:
                    raise ValueError(_nan_message(i))
        if self._single is None:
            self._single = self._compile_single()
        return self._single(x)

    def score_many(self, X: Matrix) -> Matrix:
        rows = np.asarray(X, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got {rows.shape}")
        missing = np.isnan(rows)
        if missing.any():
            raise ValueError(_nan_message(int(np.flatnonzero(missing.any(axis=0))[0])))
        with np.errstate(over="ignore"):
            scaled = (rows - self.low) / self.scale
        total = np.zeros(len(rows))
        chunk = max(1, _CHUNK_CELLS // self.n_trees)
        for start in range(0, len(rows), chunk):
            total[start : start + chunk] = self._totals(scaled[start : start + chunk])
        scores: Matrix = 1.0 - total / self.max_score
        return scores

    def _totals(self, rows: Floats) -> Floats:
        """Every row x tree walks one level per step, all at once; a walk that has
        stopped stays put (it is its own next node)."""
        flat = rows.ravel()
        row_start = (np.arange(len(rows)) * self.n_features)[:, None]
        node = np.repeat(self.roots[None, :], len(rows), axis=0)
        for _ in range(self.max_depth):
            x = flat.take(row_start + self._tested.take(node))
            right = ~(x < self.threshold.take(node))  # River goes left when x < t
            node = self._first.take(node) + (right & self._inner.take(node))
        # integers below 2 ** 53: any order of addition is exact
        totals: Floats = self.value.take(node).sum(axis=1)
        return totals

    def _compile_single(self) -> Callable[[Sequence[float]], float]:
        """Generate one Python function: the scaling of the features the trees test,
        then a sum term of nested conditional expressions per tree.

        Safe to ``exec``: the source holds only integers and ``repr`` of finite floats
        taken from the validated numeric arrays, never a string from a stored model."""
        feature, threshold = self.feature.tolist(), self.threshold.tolist()
        left, value = self.left.tolist(), self.value.tolist()
        low, scale = self.low.tolist(), self.scale.tolist()

        def node(i: int) -> str:
            if feature[i] < 0:
                return repr(value[i])
            f, t, a = feature[i], threshold[i], left[i]
            return f"({node(a)} if x{f} < {t!r} else {node(a + 1)})"

        names = "".join(f"v{i}, " for i in range(self.n_features))
        lines = ["def score(x):", f"    {names}= x"]
        lines += [
            f"    x{i} = (v{i} - {low[i]!r}) / {scale[i]!r}"
            for i in sorted(set(self.feature[self.feature >= 0].tolist()))
        ]
        lines.append("    d = 0.0")
        lines += [f"    d += {node(root)}" for root in self.roots.tolist()]
        lines.append(f"    return 1.0 - d / {self.max_score!r}")
        namespace: dict[str, Any] = {"__builtins__": {}}
        code = compile("\n".join(lines), "<usertide.anomaly.halfspace>", "exec")
        exec(code, namespace)  # noqa: S102 - generated from numbers only, see above
        function: Callable[[Sequence[float]], float] = namespace["score"]
        return function

    # -- storage --------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        header = {
            "version": FORMAT_VERSION,
            "kind": self.kind,
            "height": self.height,
            "window_size": self.window_size,
        }
        return arrays.write(
            header,
            {
                "low": self.low,
                "scale": self.scale,
                "feature": self.feature.astype(np.int32),
                "threshold": self.threshold,
                "mass": self.mass.astype(np.int32),
                "left": self.left.astype(np.int32),
                "roots": self.roots,
            },
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> HalfSpaceModel:
        """Load what ``to_bytes`` wrote; ``ValueError`` on anything else."""
        floats = {"low", "scale", "threshold"}
        kinds = {name: "f" if name in floats else "i" for name in _ARRAYS}
        header, stored = arrays.read(data, kinds, "stored half-space trees")
        if header.get("version") != FORMAT_VERSION:
            raise ValueError("unsupported stored half-space trees version")
        if header.get("kind") != cls.kind:
            raise ValueError(f"stored model is not of kind {cls.kind!r}")
        return cls(
            **stored,
            height=_header_int(header, "height"),
            window_size=_header_int(header, "window_size"),
        )


class HalfSpaceTreesDetector(Detector):
    """Fits River's ``HalfSpaceTrees`` on the latest ``window_size`` rows (fewer when
    there are fewer rows), scaled with the range of all rows."""

    kind: ClassVar[str] = "half_space_trees"

    def __init__(
        self, n_trees: int = 25, height: int = 10, window_size: int = 250, seed: int = 0
    ) -> None:
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.seed = seed

    def fit(self, X: Matrix) -> HalfSpaceModel:
        from river.anomaly import HalfSpaceTrees

        rows = np.asarray(X, dtype=np.float64)
        if rows.ndim != 2 or len(rows) < 2 or rows.shape[1] < 1:
            raise ValueError("fitting needs at least two rows of features")
        if not np.all(np.isfinite(rows)):
            raise ValueError("fitting needs finite features")
        low = rows.min(axis=0)
        span = rows.max(axis=0) - low
        scale = np.where(span > 0, span, 1.0)
        window = min(self.window_size, len(rows))
        hst: Any = HalfSpaceTrees(
            n_trees=self.n_trees, height=self.height, window_size=window, seed=self.seed
        )
        for row in ((rows[-window:] - low) / scale).tolist():
            hst.learn_one(dict(enumerate(row)))
        return HalfSpaceModel.from_river(hst, low, scale)

    def load(self, data: bytes) -> HalfSpaceModel:
        return HalfSpaceModel.from_bytes(data)


def _header_int(header: dict[str, Any], key: str) -> int:
    value = header.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key} must be an integer")
    return value


def _nan_message(column: int) -> str:
    return f"feature {column} is NaN: the half-space trees need every feature"
