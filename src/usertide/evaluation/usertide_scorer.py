"""usertide's own sign-in model as a scorer for the evaluation harness.

Each sign-in goes through the collector's normalization and enrichment, is scored from
the engine's current state (``assess_now``: what ``POST /v1/risk/login`` answers), then
applied to the engine, which learns from it by the model's own rules (low-risk successes
at once; flagged ones never, since the harness gives no feedback). The population
snapshot is retrained from the successful sign-ins seen so far every
``retrain_every`` sign-ins, as ``USERTIDE_POPULATION_INTERVAL`` does in the service.

The events of the sessions after sign-ins (when the file has them) go through the same
normalization and enrichment to the same engine (``follow``), whose ``LoginAftermath``
adds each sensitive action to the log-odds its sign-in got; the alerts it raises are
answered with the id of the sign-in they are about, for the session score.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from usertide.capture.base import CaptureRequest
from usertide.capture.segment import normalize_item
from usertide.engine import Engine
from usertide.engine.base import Detection
from usertide.enrich import build_enrichers
from usertide.events import Event
from usertide.risk import LoginAftermath, LoginRisk, NetworkVelocity, RiskConfig, login_features
from usertide.risk.features import LoginFeatures
from usertide.risk.now import assess_now
from usertide.risk.population import train_population


class UsertideLoginScorer:
    name = "usertide (likelihood ratio + signals)"

    def __init__(self, config: RiskConfig | None = None, retrain_every: int = 20_000) -> None:
        self.risk = LoginRisk(config)
        self.velocity = NetworkVelocity(config)
        self.aftermath = LoginAftermath(config)
        self.engine = Engine([self.velocity, self.risk, self.aftermath])
        self.enrichers = build_enrichers()
        self.retrain_every = retrain_every
        self._request = CaptureRequest(endpoint="batch", received_at=datetime.now(UTC))
        self._seen: list[LoginFeatures] = []
        self._current: Event | None = None

    def _event(self, event: dict[str, Any]) -> Event:
        normalized = normalize_item(event, self._request, {}, None, None)
        self.enrichers.enrich(normalized)
        normalized.offset = self.engine.offset + 1
        return normalized

    def follow(self, event: dict[str, Any]) -> list[tuple[str, float]]:
        """An event of a session after a sign-in: applied; the aftermath alerts it raises."""
        return [
            (str(output.data["sign_in"]), output.score)
            for output in self.engine.apply(self._event(event))
            if isinstance(output, Detection) and output.detector == self.aftermath.name
        ]

    def score(self, event: dict[str, Any]) -> float:
        normalized = self._event(event)
        self._current = normalized
        return assess_now(self.engine, self.risk, self.velocity, normalized).score

    def learn(self, event: dict[str, Any], score: float) -> None:
        current = self._current
        if current is None:
            return
        self.engine.apply(current)
        self._seen.append(login_features(current))
        if len(self._seen) % self.retrain_every == 0:
            version = self.risk.population.version + 1
            self.risk.population = train_population(self._seen, version=version)
