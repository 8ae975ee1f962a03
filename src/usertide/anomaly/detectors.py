"""The session detectors by kind, as configuration names them
(``USERTIDE_ANOMALY_DETECTOR``)."""

from __future__ import annotations

from collections.abc import Callable

from usertide.anomaly.base import Detector
from usertide.anomaly.halfspace import HalfSpaceTreesDetector
from usertide.anomaly.isolation import IsolationForestDetector

DETECTORS: dict[str, Callable[[], Detector]] = {
    IsolationForestDetector.kind: IsolationForestDetector,
    HalfSpaceTreesDetector.kind: HalfSpaceTreesDetector,
}


def detector(kind: str) -> Detector:
    try:
        return DETECTORS[kind]()
    except KeyError:
        raise ValueError(
            f"unknown anomaly detector {kind!r}; known: {', '.join(sorted(DETECTORS))}"
        ) from None
