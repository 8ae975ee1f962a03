"""What the outbox holds: one notification, addressed to one channel and recipient."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec


class NotificationStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after the last retry, or refused for good


class Notification(msgspec.Struct, kw_only=True):
    """``id`` is the idempotency key: enqueueing the same id twice stores it once, and
    receivers see it (e-mail ``Message-ID``, webhook ``X-Usertide-Delivery``) so they
    can drop a repeat after a crash between sending and recording the delivery."""

    id: str
    channel: str  # "email" | "webhook"
    recipient: str  # an e-mail address or a URL
    kind: str  # "admin_alert" | "user_signin" | "digest" | ...
    subject: str = ""
    text: str = ""
    html: str = ""
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    created_at: datetime
    status: NotificationStatus = NotificationStatus.PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
