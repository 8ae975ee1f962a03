"""Signed, expiring links for the buttons in an alert e-mail ("Yes, it was me" / "No,
secure my account").

A token is ``<payload>.<signature>``, both base64url without padding: the payload is
msgpack ``[version, action, alert_id, user_id, expires_unix]`` and the signature is
HMAC-SHA256 over the payload text, under a key derived from the secret for this purpose
only. Tokens use only ``A-Z a-z 0-9 - _ .``, so they sit in a URL path unescaped. The
signature is checked (in constant time) before the payload is decoded.

Anyone holding the link can use it until it expires: the page it opens should ask for a
click (a POST) before acting, because mail scanners fetch links in e-mails.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec

_VERSION = 1
_PURPOSE = b"usertide/feedback-link/v1"
_TOKEN = re.compile(r"([A-Za-z0-9_-]{1,2048})\.([A-Za-z0-9_-]{43})")
MIN_SECRET_BYTES = 16

InvalidReason = Literal["malformed", "bad_signature", "expired"]


class InvalidLink(Exception):
    """``reason``: ``"malformed"``, ``"bad_signature"`` or ``"expired"``."""

    def __init__(self, reason: InvalidReason) -> None:
        super().__init__(reason)
        self.reason: InvalidReason = reason


@dataclass(frozen=True, slots=True)
class LinkClaims:
    action: str
    alert_id: str
    user_id: str
    expires_at: datetime


class _Payload(msgspec.Struct, array_like=True):
    version: int
    action: str
    alert_id: str
    user_id: str
    expires: int


_decoder = msgspec.msgpack.Decoder(_Payload)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class LinkSigner:
    def __init__(
        self,
        secret: bytes,
        base_url: str,
        ttl: timedelta = timedelta(days=7),
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the link secret needs at least {MIN_SECRET_BYTES} bytes")
        if not base_url.startswith(("https://", "http://")):
            raise ValueError("base_url must be an http(s) URL")
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        self._key = hmac.new(secret, _PURPOSE, hashlib.sha256).digest()
        self._base_url = base_url.rstrip("/")
        self._ttl = ttl
        self._clock = clock

    def token(self, action: str, alert_id: str, user_id: str, now: datetime | None = None) -> str:
        expires = int(((now or self._clock()) + self._ttl).timestamp())
        payload = msgspec.msgpack.encode(_Payload(_VERSION, action, alert_id, user_id, expires))
        body = _b64(payload)
        return f"{body}.{self._sign(body)}"

    def url(self, action: str, alert_id: str, user_id: str) -> str:
        return f"{self._base_url}/v1/feedback/{self.token(action, alert_id, user_id)}"

    def verify(self, token: str, now: datetime | None = None) -> LinkClaims:
        """The claims of a token this signer made and that hasn't expired at ``now``;
        :class:`InvalidLink` otherwise."""
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise InvalidLink("malformed")
        body, signature = match.groups()
        if not hmac.compare_digest(self._sign(body), signature):
            raise InvalidLink("bad_signature")
        try:
            payload = _decoder.decode(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (binascii.Error, ValueError, msgspec.DecodeError):
            raise InvalidLink("malformed") from None
        if payload.version != _VERSION:
            raise InvalidLink("malformed")
        expires_at = datetime.fromtimestamp(payload.expires, UTC)
        if (now or self._clock()) >= expires_at:
            raise InvalidLink("expired")
        return LinkClaims(payload.action, payload.alert_id, payload.user_id, expires_at)

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
