"""Webhooks: POST the notification's payload as JSON, signed so receivers can trust it.

Every request carries ``X-Usertide-Signature: t=<unix seconds>,v1=<hex>``, where the hex
is HMAC-SHA256 of ``f"{t}.{raw body}"`` under the shared secret (the scheme Stripe uses):
a receiver recomputes it with :func:`verify_signature` and rejects requests whose ``t`` is
too old, so a captured request can't be replayed later. ``X-Usertide-Delivery`` is the
notification id, the same on every retry, for receivers to drop repeats.

The URL is checked by :mod:`usertide.notify.netguard` before any connection, and the
request goes to the checked address (the host name still names the TLS certificate and
the ``Host`` header). Redirects are not followed. Error messages name the host only:
webhook URLs often carry a secret in their path.
"""

from __future__ import annotations

import hashlib
import hmac
import ssl
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import msgspec

from usertide.notify.base import DeliveryError, Notifier
from usertide.notify.model import Notification
from usertide.notify.netguard import (
    Destination,
    Resolver,
    UnsafeDestination,
    check_url,
    system_resolver,
)

SIGNATURE_HEADER = "X-Usertide-Signature"
DELIVERY_HEADER = "X-Usertide-Delivery"
USER_AGENT = "usertide-webhook/1"
_RETRYABLE_STATUS = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """``allow_private`` lets webhooks reach private, loopback and link-local addresses
    (a self-hosted receiver on the LAN); ``allowed_hosts`` does so for the listed hosts
    only. ``ca_file`` adds a CA bundle for receivers whose certificate a private CA
    signed; certificates are always verified."""

    secret: str = field(repr=False)
    timeout: float = 5.0
    allow_private: bool = False
    allowed_hosts: Collection[str] = ()
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if not self.secret:
            raise ValueError("a webhook secret is required")


def sign(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The ``X-Usertide-Signature`` value for ``body`` sent at ``timestamp``."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify_signature(
    secret: str | bytes,
    header: str,
    body: bytes | str,
    tolerance: float = 300,
    now: float | None = None,
) -> bool:
    """True if ``header`` (an ``X-Usertide-Signature`` value) signs ``body`` (the raw
    request body, before any JSON parsing) under ``secret`` and its timestamp is within
    ``tolerance`` seconds of ``now`` (default: the current time). Several ``v1`` entries
    are allowed (a sender rotating secrets); one match is enough."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t" and value.isdigit() and value.isascii():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    raw = body.encode() if isinstance(body, str) else body
    expected = _digest(secret, timestamp, raw).encode()
    # Check every candidate, so the time taken doesn't tell which one matched.
    matches = [hmac.compare_digest(expected, c.encode("ascii", "replace")) for c in candidates]
    return any(matches)


class WebhookNotifier(Notifier):
    channel: ClassVar[str] = "webhook"

    def __init__(
        self,
        config: WebhookConfig,
        *,
        resolver: Resolver = system_resolver,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._resolver = resolver
        self._clock = clock
        self._client = httpx.Client(
            timeout=config.timeout,
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: it would bypass the guard
            verify=ssl.create_default_context(cafile=config.ca_file),
            # Connections are made to an IP with the host name as TLS server name; a
            # pooled connection could be reused for another host on the same IP.
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def deliver(self, note: Notification) -> None:
        destination = self._destination(note.recipient)
        try:
            body = msgspec.json.encode(note.payload)
        except (msgspec.EncodeError, TypeError) as error:
            raise DeliveryError(f"payload is not JSON: {error}", retryable=False) from None
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Host": destination.url.netloc.decode("ascii"),
            DELIVERY_HEADER: note.id,
            SIGNATURE_HEADER: sign(self._config.secret, body, int(self._clock())),
        }
        extensions: dict[str, Any] = {}
        if destination.url.scheme == "https":
            extensions["sni_hostname"] = destination.host
        failure = "no address"
        for address in destination.addresses:
            url = destination.url.copy_with(host=address)
            try:
                with self._client.stream(
                    "POST", url, content=body, headers=headers, extensions=extensions
                ) as response:
                    status = response.status_code
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                failure = f"{type(error).__name__}: {error}"
                continue  # nothing was sent: the next address may answer
            except httpx.TimeoutException as error:
                raise DeliveryError(
                    f"webhook to {destination.host} timed out: {type(error).__name__}",
                    retryable=True,
                ) from error
            except httpx.HTTPError as error:
                raise DeliveryError(
                    f"webhook to {destination.host} failed: {type(error).__name__}: {error}",
                    retryable=True,
                ) from error
            _check_status(destination.host, status)
            return
        raise DeliveryError(
            f"could not connect to webhook host {destination.host}: {failure}", retryable=True
        )

    def close(self) -> None:
        self._client.close()

    def _destination(self, url: str) -> Destination:
        try:
            return check_url(
                url,
                allow_private=self._config.allow_private,
                allowed_hosts=self._config.allowed_hosts,
                resolver=self._resolver,
            )
        except UnsafeDestination as error:
            raise DeliveryError(f"webhook URL refused: {error}", retryable=False) from None
        except (OSError, UnicodeError) as error:
            raise DeliveryError(f"webhook host did not resolve: {error}", retryable=True) from None


def _check_status(host: str, status: int) -> None:
    if 200 <= status < 300:
        return
    retryable = status in _RETRYABLE_STATUS or status >= 500
    hint = " (redirects are not followed)" if 300 <= status < 400 else ""
    raise DeliveryError(f"webhook host {host} answered HTTP {status}{hint}", retryable=retryable)


def _digest(secret: str | bytes, timestamp: int, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
