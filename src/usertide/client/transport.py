"""Delivery of one batch to the collector's ``POST /v1/batch``, with the retry policy.

The queue and the background thread live in :mod:`usertide.client.client`; this module only
knows how to turn a list of already-encoded events into an HTTP request and when a failed
request is worth repeating.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import msgspec

logger = logging.getLogger("usertide.client")

BATCH_PATH = "/v1/batch"
# The collector rejects batches over 500 KB and events over 32 KB. We aim below the batch limit
# so the envelope ({"batch": [...], "sentAt": ...}) can never push a full batch over it.
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 450 * 1024
_ENVELOPE_BYTES = 64


class DeliveryError(Exception):
    """A batch was not delivered and will not be retried; its events are dropped client side."""


class BatchRejected(DeliveryError):
    """The collector answered with a 4xx that retrying cannot fix (bad key, bad payload…).

    The collector keeps rejected input as failed events, so nothing is lost server side.
    """

    def __init__(self, status: int, code: str | None, message: str) -> None:
        super().__init__(f"HTTP {status} {code or 'error'}: {message}")
        self.status = status
        self.code = code
        self.message = message


class RetriesExhausted(DeliveryError):
    """Every attempt failed with a retryable error (connection error, 429 or 5xx)."""

    def __init__(self, attempts: int, last_failure: str) -> None:
        super().__init__(f"gave up after {attempts} attempts; last failure: {last_failure}")
        self.attempts = attempts
        self.last_failure = last_failure


class DeliveryCancelled(DeliveryError):
    """The client shut down (its shutdown timeout expired) while this batch was still pending."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    # A server asking for a longer pause is treated as down: we would rather spend the retry
    # budget than stall the whole queue (and any flush() waiting on it) for minutes.
    max_retry_after: float = 60.0

    def backoff(self, retry_number: int) -> float:
        """Exponential backoff with full jitter: spreads retries of many clients after an outage."""
        ceiling = min(self.max_delay, self.base_delay * 2.0**retry_number)
        return random.uniform(0.0, ceiling)


def is_retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def iso_utc(moment: datetime) -> str:
    """ISO-8601 in UTC with millisecond precision and a ``Z`` suffix, like Segment's SDKs."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_batch(encoded_events: Sequence[bytes], sent_at: datetime) -> bytes:
    """The request body, spliced from events encoded once at enqueue time."""
    return b"".join(
        (
            b'{"batch":[',
            b",".join(encoded_events),
            b'],"sentAt":',
            msgspec.json.encode(iso_utc(sent_at)),
            b"}",
        )
    )


def batch_overhead(event_count: int) -> int:
    """Bytes a batch adds around its events: the envelope plus one comma per event."""
    return _ENVELOPE_BYTES + event_count


def _error_details(response: httpx.Response) -> tuple[str | None, str]:
    """``(code, message)`` from a ``{"error": {"code", "message"}}`` body, tolerating others."""
    try:
        body = msgspec.json.decode(response.content)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None, response.text[:200] or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = error.get("code")
        message = error.get("message")
        return (
            code if isinstance(code, str) else None,
            message if isinstance(message, str) else response.reason_phrase,
        )
    return None, response.reason_phrase


class BatchSender:
    """POSTs batches over one shared :class:`httpx.Client`, retrying what is worth retrying.

    ``sleep`` waits between attempts; ``cancelled`` is polled before each attempt so a client
    that is shutting down stops retrying instead of holding the process open.
    """

    def __init__(
        self,
        http: httpx.Client,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], object],
        cancelled: Callable[[], bool],
    ) -> None:
        self._http = http
        self._policy = policy
        self._sleep = sleep
        self._cancelled = cancelled

    def send(self, encoded_events: Sequence[bytes]) -> None:
        """Deliver the batch or raise a :class:`DeliveryError` saying why it was given up."""
        attempts = self._policy.max_retries + 1
        last_failure = ""
        for attempt in range(attempts):
            if self._cancelled():
                raise DeliveryCancelled("client shut down before the batch was delivered")
            # sentAt is stamped per attempt: the collector corrects device clock skew with
            # (receivedAt - sentAt), which is only right if sentAt is the moment of sending.
            body = encode_batch(encoded_events, datetime.now(UTC))
            retry_after: float | None = None
            try:
                response = self._http.post(
                    BATCH_PATH, content=body, headers={"Content-Type": "application/json"}
                )
            except httpx.TransportError as exc:
                last_failure = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return
                code, message = _error_details(response)
                if not is_retryable_status(response.status_code):
                    raise BatchRejected(response.status_code, code, message)
                last_failure = f"HTTP {response.status_code}: {message}"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt + 1 == attempts:
                break
            if retry_after is not None:
                delay = min(retry_after, self._policy.max_retry_after)
            else:
                delay = self._policy.backoff(attempt)
            logger.debug(
                "batch attempt %d failed (%s); retrying in %.2fs", attempt + 1, last_failure, delay
            )
            self._sleep(delay)
        raise RetriesExhausted(attempts, last_failure)
