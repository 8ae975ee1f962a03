"""Builds the population snapshot from stored sign-ins, in the background."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import msgspec

from usertide.risk.detector import LoginRisk
from usertide.risk.features import LoginFeatures, login_features
from usertide.risk.population import Population, train_population
from usertide.store.base import EventQuery, Store

log = logging.getLogger(__name__)

MODEL_NAME = "population"


class PopulationTrainer:
    def __init__(
        self,
        store: Store,
        detector: LoginRisk,
        *,
        interval: float = 600.0,
        max_logins: int = 1_000_000,
    ) -> None:
        self.store = store
        self.detector = detector
        self.interval = interval
        self.max_logins = max_logins
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def logins(self) -> Iterator[LoginFeatures]:
        seen = 0
        for name in self.detector.config.login_events:
            cursor: int | None = None
            while seen < self.max_logins:
                page = self.store.query_events(
                    EventQuery(name=name, after_offset=cursor, limit=5_000)
                )
                if not page:
                    break
                for event in page:
                    if event.type == "track":
                        seen += 1
                        yield login_features(event)
                cursor = page[-1].offset

    def load_latest(self) -> None:
        """Activate the last stored snapshot (at start, before the engine replays)."""
        latest = self.store.model_latest(MODEL_NAME)
        if latest is not None:
            self.detector.population = msgspec.msgpack.decode(latest[1], type=Population)

    def train_once(self) -> Population:
        """Train, store and activate a new snapshot.

        A new snapshot is a model change: events the engine processes from now on are
        scored with it, so a replay across a retrain is not bit-for-bit the same run.
        """
        version = self.detector.population.version + 1
        population = train_population(self.logins(), version=version)
        self.store.model_put(MODEL_NAME, version, msgspec.msgpack.encode(population))
        self.detector.population = population  # replaced whole: readers never see a mix
        log.info("population snapshot v%d from %d sign-ins", version, population.logins)
        return population

    def start(self) -> None:
        """Retrain every ``interval`` seconds (0: only when asked)."""
        if self.interval <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="usertide-trainer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.train_once()
            except Exception:
                log.exception("population training failed")
