"""What an account does right after signing in: a session that behaves like a takeover.

Account takeovers seldom stop at the sign-in: the attacker changes the e-mail address or
the password to keep the account, adds a payment method, exports data (Castle and Sift
score these post-login events with the sign-in that preceded them). ``LoginAftermath``
runs after ``LoginRisk``, remembers the user's latest successful sign-ins (up to three
within the window) with the score ``LoginRisk`` gave each, and adds to the log-odds of the
session an action belongs to (same browser and /24, else same browser, else the latest
sign-in) the weight of each sensitive action
(``RiskConfig.sensitive_actions`` → ``RiskConfig.weights``) made within
``aftermath_window`` seconds of it. When the total reaches a level above what the
sign-in got (a sign-in that looked fine, then an e-mail change), it emits one
``Detection`` for that sign-in (``data["sign_in"]``: its event id), at most one per
level. Legitimate users change passwords too: an action after an ordinary sign-in
(log-odds around -5) stays below the thresholds; it is the combination that alerts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import msgspec

from usertide.engine.base import Detection, Output, Processor, Reason, UserState
from usertide.events import Event
from usertide.risk.assess import Assessment
from usertide.risk.config import RiskConfig
from usertide.risk.detector import ASSESSMENT_SCRATCH
from usertide.risk.features import login_features
from usertide.risk.likelihood import compact_levels

LEVELS = {"low": 0, "medium": 1, "high": 2}
MAX_ACTIONS = 6
MAX_SIGN_IN_REASONS = 4
PREFIX_AT = 2  # the /24's place in compact_levels (country, network, prefix, ...)
MAX_SESSIONS = 3  # sign-ins within the window kept apart (laptop, phone, someone else)
ACTION_TEXT = {
    "password_change": "the password was changed",
    "email_change": "the e-mail address was changed",
    "payment_method_added": "a payment method was added",
    "data_export": "the account's data was exported",
    "mfa_disabled": "two-factor authentication was turned off",
}


class Opened(msgspec.Struct, array_like=True):
    """A successful sign-in and what its session has done since."""

    sign_in: str  # its event id
    time: float
    agent: int | str  # compact keys of its user agent and /24: the session an action is in
    prefix: int | str
    score: float  # what LoginRisk gave it
    level: str  # the highest level reported for it so far (the sign-in's own first)
    reasons: list[str] = msgspec.field(default_factory=list)  # the sign-in's reason codes
    actions: list[str] = msgspec.field(default_factory=list)  # sensitive action codes since


class AftermathState(msgspec.Struct, array_like=True):
    sessions: list[Opened] = msgspec.field(default_factory=list)  # the latest, oldest first


class LoginAftermath(Processor[AftermathState]):
    name: ClassVar[str] = "login_aftermath"
    state_type: ClassVar[type[msgspec.Struct]] = AftermathState

    def __init__(self, config: RiskConfig | None = None) -> None:
        self.config = config or RiskConfig()

    def initial(self) -> AftermathState:
        return AftermathState()

    def process(self, event: Event, state: AftermathState, user: UserState) -> Sequence[Output]:
        if event.type != "track":
            return ()
        config = self.config
        name = event.name or ""
        if name in config.login_events:
            self._sign_in(event, state, user)
            return ()
        code = config.sensitive_actions.get(name)
        if code is None:
            return ()
        if not state.sessions:
            return ()
        here = login_features(event)
        t = here.time
        opened = self._session(state, here.agent, here.network, t)
        if opened is None or code in opened.actions or len(opened.actions) >= MAX_ACTIONS:
            return ()
        opened.actions.append(code)
        weights = config.weights
        p = min(max(opened.score, 1e-4), 1.0 - 1e-4)
        z = math.log(p / (1.0 - p)) + sum(weights.get(c, 0.0) for c in opened.actions)
        score = 1.0 / (1.0 + math.exp(-z))
        level = "high" if score >= config.high else "medium" if score >= config.medium else "low"
        if LEVELS[level] <= LEVELS.get(opened.level, 0):
            return ()
        opened.level = level
        return [self._detection(event, opened, user.key, t, score, level)]

    def _session(
        self,
        state: AftermathState,
        agent: tuple[str, str, str, str, str],
        network: tuple[str, str, str],
        t: float,
    ) -> Opened | None:
        """The open session an action at ``t`` belongs to: the latest sign-in from the same
        browser and /24, else from the same browser, else the latest (a phone's sign-in
        does not take over the laptop's session, nor an attacker's the owner's)."""
        window = self.config.aftermath_window
        open_ = [s for s in state.sessions if 0.0 <= t - s.time <= window]
        if not open_:
            return None
        keys = compact_levels(network, agent)
        agent_key, prefix_key = keys[-1][1], keys[PREFIX_AT][1]
        same = [s for s in open_ if s.agent == agent_key]
        exact = [s for s in same if s.prefix == prefix_key]
        return (exact or same or open_)[-1]

    def _sign_in(self, event: Event, state: AftermathState, user: UserState) -> None:
        # This runs for every sign-in: the work is kept to building one small struct.
        login = login_features(event)
        sessions = state.sessions
        if sessions:
            horizon = login.time - self.config.aftermath_window
            if len(sessions) >= MAX_SESSIONS or sessions[0].time < horizon:
                sessions = [s for s in sessions if s.time >= horizon][1 - MAX_SESSIONS :]
                state.sessions = sessions
        if not login.success:
            return  # a failed attempt opens no session
        result: Assessment | None = user.scratch.get(ASSESSMENT_SCRATCH)
        if result is None:
            return
        reasons = result.reasons
        keys = compact_levels(login.network, login.agent)  # cached per pair of paths
        sessions.append(
            Opened(
                sign_in=event.id,
                time=login.time,
                agent=keys[-1][1],
                prefix=keys[PREFIX_AT][1],
                score=result.score,
                level=result.level,
                reasons=[r.code for r in reasons[:MAX_SIGN_IN_REASONS]] if reasons else [],
            )
        )

    def _detection(
        self, event: Event, opened: Opened, user_key: str, t: float, score: float, level: str
    ) -> Detection:
        minutes = max(t - opened.time, 0.0) / 60.0
        done = [ACTION_TEXT.get(c, c.replace("_", " ")) for c in opened.actions]
        before = (
            "a sign-in that looked ordinary"
            if not opened.reasons
            else "a sign-in showing " + ", ".join(c.replace("_", " ") for c in opened.reasons)
        )
        reasons = tuple(
            Reason(
                code=code,
                message=f"{text} {minutes:.0f} min after {before}",
                data={"sign_in": opened.sign_in, "minutes": round(minutes, 1)},
            )
            for code, text in zip(opened.actions, done, strict=True)
        )
        return Detection(
            detector=self.name,
            user_key=user_key,
            event_id=event.id,
            timestamp=t,
            score=round(score, 4),
            level=level,
            reasons=reasons,
            data={
                "action": "review",
                "sign_in": opened.sign_in,
                "sign_in_reasons": list(opened.reasons),
                "ip": event.context.ip,
            },
        )

    def merge(self, into: AftermathState, other: AftermathState) -> AftermathState:
        return into if len(into.sessions) >= len(other.sessions) else other

    def view(self, state: AftermathState) -> dict[str, Any]:
        return {
            "open_sessions": [
                {"sign_in": s.sign_in, "actions_since": list(s.actions)} for s in state.sessions
            ]
        }
