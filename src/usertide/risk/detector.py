"""The sign-in risk model as engine processors.

``NetworkVelocity`` keeps, per /24 (/48) network, the recent sign-in attempts and leaves
the network's activity on the event's scratch; ``LoginRisk`` then scores the sign-in
against the user's history, learns from it when it is trusted, and emits a
``Detection`` when it is not low risk.

Learning: successful sign-ins scored low update the history at once; flagged ones are
held as pending until feedback (a ``$login_feedback`` event) says "it was me" (then
learned) or "not me" (then dropped). Failed attempts only feed the brute-force window.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, ClassVar

import msgspec

from usertide.engine.base import Detection, Output, Processor, Reason, UserState
from usertide.events import Event
from usertide.risk.assess import Assessment, NetworkActivity, assess
from usertide.risk.config import RiskConfig
from usertide.risk.features import LoginFeatures, login_features
from usertide.risk.history import (
    MAX_FAILURES,
    MAX_PENDING,
    Count,
    LoginHistory,
    Pending,
    learn,
)
from usertide.risk.likelihood import compact_levels
from usertide.risk.population import Population

FEEDBACK_EVENT = "$login_feedback"
NETWORK_SCRATCH = "network_activity"
ASSESSMENT_SCRATCH = "login_assessment"  # this sign-in's Assessment, for later processors
RISK_PROPERTY = "$risk"
MAX_ATTEMPTS = 64


def is_login(event: Event, config: RiskConfig) -> bool:
    return event.type == "track" and event.name in config.login_events


class Attempt(msgspec.Struct, array_like=True):
    time: float
    user: int  # a short hash of the account tried; the network state holds no user ids
    success: bool


class NetworkState(msgspec.Struct, array_like=True):
    attempts: list[Attempt] = msgspec.field(default_factory=list)


class NetworkVelocity(Processor[NetworkState]):
    name: ClassVar[str] = "network_velocity"
    state_type: ClassVar[type[msgspec.Struct]] = NetworkState
    key_kind: ClassVar[str] = "network"

    def __init__(self, config: RiskConfig | None = None) -> None:
        self.config = config or RiskConfig()

    def key(self, event: Event) -> str | None:
        if not is_login(event, self.config):
            return None
        return login_features(event).prefix

    def initial(self) -> NetworkState:
        return NetworkState()

    def process(self, event: Event, state: NetworkState, user: UserState) -> Sequence[Output]:
        login = login_features(event)
        state.attempts = self.prune(state.attempts, login.time)
        state.attempts.append(
            Attempt(time=login.time, user=_user_hash(event), success=login.success)
        )
        if len(state.attempts) > MAX_ATTEMPTS:
            del state.attempts[: len(state.attempts) - MAX_ATTEMPTS]
        user.scratch[NETWORK_SCRATCH] = self.activity(state.attempts, login.time)
        return ()

    def peek(self, event: Event, state: NetworkState | None) -> NetworkActivity:
        """The activity this event would see, without recording it (the risk API)."""
        login = login_features(event)
        attempts = list(state.attempts) if state is not None else []
        attempts.append(Attempt(time=login.time, user=_user_hash(event), success=login.success))
        return self.activity(attempts, login.time)

    def prune(self, attempts: list[Attempt], now: float) -> list[Attempt]:
        horizon = now - max(self.config.failure_window, self.config.stuffing_window)
        for a in attempts:
            if a.time < horizon:
                return [a for a in attempts if a.time >= horizon]
        return attempts  # nothing to drop (the usual case): no copy

    def activity(self, attempts: list[Attempt], now: float) -> NetworkActivity:
        c = self.config
        failed_since = now - c.failure_window
        tried_since = now - c.stuffing_window
        failures = recent = 0
        users = set()
        failing = set()
        for a in attempts:  # one plain pass: this runs for every sign-in
            if a.time >= tried_since:
                users.add(a.user)
            if a.time >= failed_since:
                recent += 1
                if not a.success:
                    failures += 1
                    failing.add(a.user)
        return NetworkActivity(
            failures=failures, users=len(users), attempts=recent, failing_users=len(failing)
        )

    def merge(self, into: NetworkState, other: NetworkState) -> NetworkState:
        return into  # network state is never merged (it is not per user)


class LoginRisk(Processor[LoginHistory]):
    name: ClassVar[str] = "login_risk"
    state_type: ClassVar[type[msgspec.Struct]] = LoginHistory

    def __init__(
        self, config: RiskConfig | None = None, population: Population | None = None
    ) -> None:
        self.config = config or RiskConfig()
        # A read-only snapshot; the trainer replaces the reference, never mutates it.
        self.population = population or Population()

    def initial(self) -> LoginHistory:
        return LoginHistory()

    def assess(self, event: Event, history: LoginHistory, network: NetworkActivity) -> Assessment:
        return assess(login_features(event), history, self.population, network, self.config)

    def process(self, event: Event, state: LoginHistory, user: UserState) -> Sequence[Output]:
        if event.type == "track" and event.name == FEEDBACK_EVENT:
            self._feedback(event, state)
            return ()
        if not is_login(event, self.config):
            return ()
        login = login_features(event)
        network = user.scratch.get(NETWORK_SCRATCH) or NetworkActivity()
        found: list[Count | None] = []  # what the likelihood found, for learning
        result = self._given(event) or assess(
            login, state, self.population, network, self.config, found
        )
        user.scratch[ASSESSMENT_SCRATCH] = result
        if not login.success:
            state.failures.append(login.time)
            if len(state.failures) > MAX_FAILURES:
                del state.failures[0]
        elif result.level == "low":
            self._learn(state, login, found)
        else:
            state.pending.append(
                Pending(
                    event_id=event.id,
                    time=login.time,
                    network=login.network,
                    agent=login.agent,
                    hour=login.hour,
                    place=login.place,
                )
            )
            if len(state.pending) > MAX_PENDING:
                del state.pending[0]
        if result.level == "low":
            return ()
        return [self.detection(event, user.key, result)]

    def detection(self, event: Event, user_key: str, result: Assessment) -> Detection:
        login = login_features(event)
        return Detection(
            detector=self.name,
            user_key=user_key,
            event_id=event.id,
            timestamp=login.time,
            score=result.score,
            level=result.level,
            reasons=result.reasons,
            data={
                "action": result.action,
                "success": login.success,
                "ip": event.context.ip,
                "country": login.country,
                "country_name": login.country_name,
                "city": login.city,
                "device": login.browser,
                "network": login.network_owner,
                "population": self.population.version,
            },
        )

    def _given(self, event: Event) -> Assessment | None:
        """The assessment the synchronous risk API already answered with, if any.

        Only events the risk API recorded carry it (``source == "risk_api"``); a
        client cannot plant one through ingestion.
        """
        if event.source != "risk_api":
            return None
        given = event.properties.get(RISK_PROPERTY)
        if not isinstance(given, dict):
            return None
        try:
            return msgspec.convert(given, Assessment)
        except msgspec.ValidationError:
            return None

    def _learn(self, state: LoginHistory, login: LoginFeatures, found: list[Count | None]) -> None:
        learn(
            state,
            compact_levels(login.network, login.agent),
            login.time,
            login.hour,
            login.place,
            login.country,
            login.browser,
            found,
        )

    def _feedback(self, event: Event, state: LoginHistory) -> None:
        target = event.properties.get("event_id")
        verdict = event.properties.get("verdict")
        pending = next((p for p in state.pending if p.event_id == target), None)
        if pending is None:
            return
        state.pending.remove(pending)
        if verdict != "safe":
            return  # "not me": never learned
        country = pending.network[0] if pending.network[0] != "?" else None
        levels = compact_levels(pending.network, pending.agent)
        learn(state, levels, pending.time, pending.hour, pending.place, country, None)

    def merge(self, into: LoginHistory, other: LoginHistory) -> LoginHistory:
        # Sign-ins happen as identified users; an anonymous visitor has none to merge.
        return into if into.logins >= other.logins else other

    def view(self, state: LoginHistory) -> dict[str, Any]:
        return {
            "logins": state.logins,
            "countries": list(state.countries),
            "devices": list(state.browsers),
            "pending_review": [p.event_id for p in state.pending],
            "recent_failures": len(state.failures),
        }


def _user_hash(event: Event) -> int:
    return _hash_of(event.user_id or event.anonymous_id or "")


@lru_cache(maxsize=100_000)
def _hash_of(who: str) -> int:
    return int.from_bytes(hashlib.blake2b(who.encode(), digest_size=4).digest(), "little")


__all__ = [
    "ASSESSMENT_SCRATCH",
    "FEEDBACK_EVENT",
    "LoginRisk",
    "NetworkVelocity",
    "Reason",
    "is_login",
]
