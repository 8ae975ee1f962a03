"""Which detections become alerts, who is told, and how often."""

from __future__ import annotations

import msgspec

from usertide.anomaly.traffic import TRAFFIC_DETECTORS

LEVELS = {"low": 0, "medium": 1, "high": 2}


class AlertRule(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    detectors: tuple[str, ...] = ("login_risk", "login_aftermath")
    min_level: str = "medium"
    reasons: tuple[str, ...] = ()  # only these reason codes (empty: any)
    notify_admins: bool = True
    notify_user: bool = True  # "was this you?" to the account's e-mail (successful sign-ins)
    webhooks: bool = True

    def matches(self, detector: str, level: str, codes: tuple[str, ...]) -> bool:
        if detector not in self.detectors:
            return False
        if LEVELS.get(level, 0) < LEVELS.get(self.min_level, 1):
            return False
        return not self.reasons or any(code in self.reasons for code in codes)


class AlertPolicy(msgspec.Struct, kw_only=True, frozen=True):
    rules: tuple[AlertRule, ...] = (
        AlertRule(name="risky sign-in"),
        AlertRule(
            name="abnormal session",
            detectors=("session_anomaly",),
            min_level="high",
            notify_user=False,
        ),
        AlertRule(name="traffic anomaly", detectors=TRAFFIC_DETECTORS, notify_user=False),
    )
    dedup_seconds: float = 3600.0  # one alert per user and reason within this window
    user_per_hour: int = 3  # notifications per user per hour before the digest takes over
    global_per_hour: int = 100
    digest_seconds: float = 3600.0
