"""The notifier contract: deliver one notification, or say whether trying again may help."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from usertide.notify.model import Notification


class DeliveryError(Exception):
    """A delivery failed. ``retryable`` says whether a later attempt may succeed
    (a relay down, a timeout, a 4xx SMTP reply, a webhook's 503) or not (a refused
    recipient, a URL that points inside the network, a webhook's 400)."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable

    def __repr__(self) -> str:
        return f"DeliveryError({self.message!r}, retryable={self.retryable})"


class Notifier(ABC):
    """One delivery channel. ``deliver`` returns once the receiver has accepted the
    notification and raises :class:`DeliveryError` otherwise; it is called from the
    outbox worker's thread, one notification at a time."""

    channel: ClassVar[str]

    @abstractmethod
    def deliver(self, note: Notification) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook, most notifiers hold nothing
        """Release connections or clients the notifier keeps between deliveries."""
