"""Alerts: detections a person should look at, with a status they can change."""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec

from usertide.events.reason import Reason


class AlertStatus(StrEnum):
    OPEN = "open"
    CONFIRMED = "confirmed"  # it was an attack ("not me")
    DISMISSED = "dismissed"  # it was the user ("it was me") or a false alarm


class Alert(msgspec.Struct, kw_only=True):
    id: str
    user_id: str
    detector: str
    event_id: str
    level: str
    score: float
    reasons: tuple[Reason, ...] = ()
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    status: AlertStatus = AlertStatus.OPEN
    created_at: datetime
    updated_at: datetime
    occurred_at: datetime
    feedback: list[dict[str, Any]] = msgspec.field(default_factory=list)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)


def alert_id(detector: str, event_id: str) -> str:
    """Deterministic: the engine and the synchronous risk API name the same alert alike."""
    digest = hashlib.blake2b(f"{detector}|{event_id}".encode(), digest_size=10).hexdigest()
    return f"al_{digest}"
