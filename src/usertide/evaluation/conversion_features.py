"""Labelled ad clicks and the features the conversion model sees, with no look-ahead.

Every feature of a click is computed from that click and the clicks *before* it in time
order (file order breaks ties, as arrival order would on a live stream), so the same
``ClickHistory`` can run event by event in the engine. The features (``FEATURE_NAMES``):

- the app, device, os and channel ids, as small codes (rare and unseen ids grouped);
- the hour of day;
- clicks in the trailing 24 hours by ip, ip x app, ip x app x os, ip x device x os,
  app x channel, ip x channel, app and channel, and in the trailing hour by ip and by app.
  Trailing windows rather than running totals: a total keeps growing, so the later
  clicks the model is scored on would carry larger counts than any it was trained on;
- seconds since the previous click of the same ip x app x device x os (one user, roughly,
  on one app) and of the same ip;
- the distinct apps and the distinct channels seen from the ip so far.

There is no "seconds until the *next* click" feature, though it is the strongest one in
the TalkingData competition: it needs the future, so a live scorer could only have it by
holding every click back until the user's next one (or a timeout). It is deliberately
not offered. ``attributed_time`` is never read either: it is the label in disguise (it is
only set when the click converted).
"""

from __future__ import annotations

import csv
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

REQUIRED_COLUMNS: Final = ("ip", "app", "device", "os", "channel", "click_time", "is_attributed")
CATEGORICAL: Final = ("app", "device", "os", "channel")
# The windowed count keys: how many clicks of each combination came in the window before.
DAY_KEYS: Final = (
    ("ip",),
    ("ip", "app"),
    ("ip", "app", "os"),
    ("ip", "device", "os"),
    ("app", "channel"),
    ("ip", "channel"),
    ("app",),
    ("channel",),
)
HOUR_KEYS: Final = (("ip",), ("app",))
RECENCY_KEYS: Final = (("ip", "app", "device", "os"), ("ip",))
DISTINCT_BY_IP: Final = ("app", "channel")
WINDOWS: Final = ((86_400, DAY_KEYS), (3_600, HOUR_KEYS))  # seconds, keys
FEATURE_NAMES: Final = (
    *CATEGORICAL,
    "hour",
    *("clicks_24h_by_" + "_".join(key) for key in DAY_KEYS),
    *("clicks_1h_by_" + "_".join(key) for key in HOUR_KEYS),
    *("seconds_since_previous_" + "_".join(key) for key in RECENCY_KEYS),
    *(f"distinct_{name}s_by_ip" for name in DISTINCT_BY_IP),
)
# HistGradientBoostingClassifier accepts category codes below max_bins (255 by default).
_MAX_CODES: Final = 254


@dataclass(frozen=True)
class Clicks:
    """Columns of a click file, sorted by click time (stable)."""

    ip: IntArray
    app: IntArray
    device: IntArray
    os: IntArray
    channel: IntArray
    time: IntArray  # seconds since the epoch (the file's times, taken as UTC)
    label: IntArray  # 1 = the click led to a download

    def __len__(self) -> int:
        return int(self.time.size)

    def column(self, name: str) -> IntArray:
        value: IntArray = getattr(self, name)
        return value

    def take(self, index: npt.NDArray[np.intp] | slice) -> Clicks:
        return Clicks(
            **{name: self.column(name)[index] for name in (*CATEGORICAL, "ip", "time", "label")}
        )


def read_clicks(path: Path) -> Clicks:
    """A TalkingData-style labelled click file; raises ``ValueError`` on a bad file."""
    with path.open(newline="") as handle:
        rows = csv.reader(handle)
        header = [name.strip() for name in next(rows, [])]
        missing = [name for name in REQUIRED_COLUMNS if name not in header]
        if missing:
            raise ValueError(
                f"{path}: the header must name the columns {', '.join(REQUIRED_COLUMNS)}; "
                f"missing: {', '.join(missing)} (found: {', '.join(header) or 'nothing'})"
            )
        at = [header.index(name) for name in REQUIRED_COLUMNS]
        ids: list[list[int]] = [[] for _ in range(6)]  # the five ids, then the label
        times: list[str] = []
        for number, row in enumerate(rows, start=2):
            if not row:
                continue
            try:
                values = [row[i] for i in at]
                for target, text in zip(ids, (*values[:5], values[6]), strict=True):
                    target.append(int(text))
            except (IndexError, ValueError):
                raise ValueError(f"{path}:{number}: expected integer ids and a 0/1 label") from None
            times.append(values[5])
    try:
        seconds = np.array(times, dtype="datetime64[s]").astype(np.int64)
    except ValueError as exc:
        raise ValueError(f"{path}: bad click_time: {exc}") from None
    label = np.asarray(ids[5], dtype=np.int64)
    if not np.isin(label, (0, 1)).all():
        raise ValueError(f"{path}: is_attributed must be 0 or 1")
    ip, app, device, os_, channel = (np.asarray(c, dtype=np.int64) for c in ids[:5])
    clicks = Clicks(
        ip=ip, app=app, device=device, os=os_, channel=channel, time=seconds, label=label
    )
    return clicks.take(np.argsort(seconds, kind="stable"))


def split_by_time(clicks: Clicks, fraction: float) -> tuple[Clicks, Clicks]:
    """The earliest ``fraction`` of the clicks and the rest (the clicks are time-sorted)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError("the split fraction must be between 0 and 1")
    cut = round(len(clicks) * fraction)
    return clicks.take(slice(0, cut)), clicks.take(slice(cut, None))


class CategoryCodes:
    """Small integer codes for the categorical columns, learned on the training clicks.

    Categories seen fewer than ``min_count`` times in training, and every category first
    seen in the test, share one "other" code: the model has learned something about that
    code (from the rare training categories) instead of meeting an unknown value.
    """

    def __init__(self, clicks: Clicks, min_count: int = 5) -> None:
        self.codes: dict[str, dict[int, int]] = {}
        for name in CATEGORICAL:
            counts = Counter(values_of(clicks, name))
            kept = [value for value, n in counts.most_common(_MAX_CODES) if n >= min_count]
            self.codes[name] = {value: code for code, value in enumerate(kept)}

    def other(self, name: str) -> int:
        return len(self.codes[name])

    def encode(self, clicks: Clicks) -> FloatArray:
        columns = []
        for name in CATEGORICAL:
            mapping, other = self.codes[name], self.other(name)
            columns.append([mapping.get(v, other) for v in values_of(clicks, name)])
        return np.asarray(columns, dtype=np.float64).T.reshape(len(clicks), len(CATEGORICAL))


def values_of(clicks: Clicks, name: str) -> list[int]:
    values: list[int] = clicks.column(name).tolist()
    return values


class ClickHistory:
    """Windowed counts, recency and distinct values over the clicks seen so far.

    Run it over the training clicks, then over the test clicks: the test's features
    continue from the training ones, as a live counter would (the test comes later in
    time). Clicks must arrive in time order, across calls too.
    """

    def __init__(self) -> None:
        self._windows: list[tuple[int, tuple[str, ...], dict[tuple[int, ...], deque[int]]]] = [
            (seconds, key, {}) for seconds, keys in WINDOWS for key in keys
        ]
        self._last_seen: list[dict[tuple[int, ...], int]] = [{} for _ in RECENCY_KEYS]
        self._distinct: list[dict[int, set[int]]] = [{} for _ in DISTINCT_BY_IP]

    def advance(self, clicks: Clicks) -> FloatArray:
        """The history features of each click (before it), then learn from it."""
        columns = {name: values_of(clicks, name) for name in (*CATEGORICAL, "ip")}
        windows = [
            (seconds, [columns[n] for n in key], seen) for seconds, key, seen in self._windows
        ]
        recency = [[columns[n] for n in key] for key in RECENCY_KEYS]
        distinct = [columns[name] for name in DISTINCT_BY_IP]
        ips = columns["ip"]
        times: list[int] = clicks.time.tolist()
        out = np.empty((len(clicks), len(FEATURE_NAMES) - len(CATEGORICAL) - 1))
        for row, at in enumerate(times):
            k = 0
            for seconds, key_columns, seen in windows:
                key = tuple(c[row] for c in key_columns)
                recent = seen.get(key)
                if recent is None:
                    recent = seen[key] = deque()
                while recent and recent[0] <= at - seconds:
                    recent.popleft()
                out[row, k] = len(recent)
                recent.append(at)
                k += 1
            for last_seen, key_columns in zip(self._last_seen, recency, strict=True):
                user = tuple(c[row] for c in key_columns)
                previous = last_seen.get(user)
                # NaN = first click: the model has a separate branch for missing values.
                out[row, k] = np.nan if previous is None else at - previous
                last_seen[user] = at
                k += 1
            for values_by_ip, column in zip(self._distinct, distinct, strict=True):
                values = values_by_ip.setdefault(ips[row], set())
                out[row, k] = len(values)
                values.add(column[row])
                k += 1
        return out


def hour_of_day(clicks: Clicks) -> IntArray:
    hours: IntArray = (clicks.time // 3600) % 24
    return hours


def day_of_week(clicks: Clicks) -> IntArray:
    # 1970-01-01 was a Thursday: shift so that 0 = Monday.
    days: IntArray = (clicks.time // 86_400 + 3) % 7
    return days


def context_features(clicks: Clicks, history: ClickHistory) -> FloatArray:
    """The hour and the history features (all but the id codes); advances ``history``."""
    hour = hour_of_day(clicks).astype(np.float64)[:, None]
    return np.hstack((hour, history.advance(clicks)))


def model_features(clicks: Clicks, codes: CategoryCodes, history: ClickHistory) -> FloatArray:
    """The model's feature matrix (columns as ``FEATURE_NAMES``); advances ``history``."""
    return np.hstack((codes.encode(clicks), context_features(clicks, history)))
