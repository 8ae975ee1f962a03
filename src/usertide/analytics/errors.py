"""The one error analytics raise for a bad request: it names the field at fault."""

from __future__ import annotations


class AnalyticsError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
