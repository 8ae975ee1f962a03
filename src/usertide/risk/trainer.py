"""Builds the population snapshot from stored sign-ins, in the background."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import msgspec

from usertide.engine.core import model_event
from usertide.events import Event
from usertide.models.schedule import Schedule
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
        # Appends the event that activates a new version where the log is then (the
        # engine switches there, also in a replay); unset, a new version is active at once.
        self.announce: Callable[[Event], object] | None = None
        self._trained: dict[int, Population] = {}  # versions not yet activated
        self.schedule = Schedule("population", interval, self.train_once)

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
        """Train and store a new snapshot, then have it activated in log order.

        The engine activates it when it applies the ``$model`` event appended here, so
        a replay after a crash scores each sign-in with the snapshot that scored it.
        """
        latest = self.store.model_latest(MODEL_NAME)
        version = max(self.detector.population.version, latest[0] if latest else 0) + 1
        population = train_population(self.logins(), version=version)
        self.store.model_put(
            MODEL_NAME,
            version,
            msgspec.msgpack.encode(population),
            {"kind": "population", "metrics": {"sign_ins": population.logins}},
        )
        log.info("population snapshot v%d from %d sign-ins", version, population.logins)
        if self.announce is None:
            self.detector.population = population
        else:
            self._trained[version] = population
            self.announce(model_event(MODEL_NAME, version, datetime.now(UTC)))
        return population

    def activate(self, version: int) -> None:
        """Make ``version`` the snapshot in force (the engine calls it, between events)."""
        if self.detector.population.version == version:
            return
        population = self._trained.pop(version, None) or (Population() if version == 0 else None)
        if population is None:
            data = self.store.model_get(MODEL_NAME, version)
            if data is None:
                log.error(
                    "population snapshot v%d is not stored; keeping v%d",
                    version,
                    self.detector.population.version,
                )
                return
            population = msgspec.msgpack.decode(data, type=Population)
        self.detector.population = population  # replaced whole: readers never see a mix

    def start(self) -> None:
        """Retrain every ``interval`` seconds (0: only when asked)."""
        self.schedule.start()

    def stop(self) -> None:
        self.schedule.stop()
