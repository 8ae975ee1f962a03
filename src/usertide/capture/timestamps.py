"""Parsing client timestamps and correcting client clock skew."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from usertide.capture.errors import ItemError
from usertide.events import FailureReason

# Reject times that cannot be real: before 2000 or more than a day in the future.
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_FUTURE_SLACK = timedelta(days=1)


def parse_time(value: object, field: str) -> datetime | None:
    """ISO-8601 text (naive means UTC) or unix time in seconds or milliseconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ItemError(FailureReason.INVALID_TIMESTAMP, f"'{field}' must be a timestamp", field)
    if isinstance(value, int | float):
        seconds = value / 1000.0 if value > 1e11 else float(value)
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ItemError(
                FailureReason.INVALID_TIMESTAMP, f"'{field}' is out of range", field
            ) from exc
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ItemError(
                FailureReason.INVALID_TIMESTAMP,
                f"'{field}' is not an ISO-8601 timestamp: {value[:64]!r}",
                field,
            ) from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ItemError(FailureReason.INVALID_TIMESTAMP, f"'{field}' must be a timestamp", field)


def corrected_time(
    client_time: datetime | None,
    sent_at: datetime | None,
    received_at: datetime,
) -> datetime:
    """Segment's skew correction: ``receivedAt - (sentAt - originalTimestamp)``.

    Without ``sentAt`` the client's time is trusted as is (historical imports);
    without a client time the event happened when it was received.
    """
    if client_time is None:
        return received_at
    try:
        result = received_at - (sent_at - client_time) if sent_at is not None else client_time
    except OverflowError:
        result = _EARLIEST - _FUTURE_SLACK  # a skew no clock can have: rejected below
    if result < _EARLIEST or result > received_at + _FUTURE_SLACK:
        raise ItemError(
            FailureReason.INVALID_TIMESTAMP,
            f"timestamp {result.isoformat()} is outside the accepted range",
            "timestamp",
        )
    return result
