"""Errors the collector answers with: a status, a stable code, and a message naming the field."""

from __future__ import annotations

from usertide.events import FailureReason


class CaptureError(Exception):
    """A request-level rejection, answered as ``{"error": {"code", "message"}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        reason: FailureReason | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.reason = reason
        self.headers = headers or {}


class ItemError(Exception):
    """One event in a request could not be normalized; it goes to failed events."""

    def __init__(self, reason: FailureReason, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.field = field
