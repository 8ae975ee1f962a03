"""Signed, expiring action links: round trip, tampering, expiry, wrong secret."""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from urllib.parse import quote

import msgspec
import pytest
from notify_support import T0

from usertide.notify import InvalidLink, LinkClaims, LinkSigner

SECRET = b"0123456789abcdef0123456789abcdef"
BASE = "https://usertide.example.com/"


def signer(secret: bytes = SECRET, ttl: timedelta = timedelta(days=7)) -> LinkSigner:
    return LinkSigner(secret, BASE, ttl, clock=lambda: T0)


def token_of(url: str) -> str:
    prefix = "https://usertide.example.com/v1/feedback/"
    assert url.startswith(prefix)
    return url[len(prefix) :]


def test_round_trip() -> None:
    s = signer()
    token = token_of(s.url("deny", "alert-1", "jane"))
    claims = s.verify(token, now=T0)
    assert claims == LinkClaims("deny", "alert-1", "jane", T0 + timedelta(days=7))


def test_tokens_are_url_safe() -> None:
    token = signer().token("confirm", "alert/ü 1?&", "user#ß@x", now=T0)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    assert quote(token, safe="") == token
    assert signer().verify(token, now=T0).alert_id == "alert/ü 1?&"


def test_expiry() -> None:
    s = signer(ttl=timedelta(hours=1))
    token = s.token("confirm", "a1", "jane", now=T0)
    assert s.verify(token, now=T0 + timedelta(minutes=59)).action == "confirm"
    with pytest.raises(InvalidLink) as caught:
        s.verify(token, now=T0 + timedelta(hours=1))
    assert caught.value.reason == "expired"
    assert s.verify(token).user_id == "jane"  # without ``now``: the signer's clock (T0)


def test_wrong_secret() -> None:
    token = signer().token("confirm", "a1", "jane", now=T0)
    with pytest.raises(InvalidLink) as caught:
        signer(b"another secret of 32 bytes......").verify(token, now=T0)
    assert caught.value.reason == "bad_signature"


def _flip(text: str, index: int) -> str:
    ch = "A" if text[index] != "A" else "B"
    return text[:index] + ch + text[index + 1 :]


@pytest.mark.parametrize("where", ["payload", "signature"])
def test_tampering(where: str) -> None:
    token = signer().token("confirm", "a1", "jane", now=T0)
    body, signature = token.split(".")
    forged = (
        f"{_flip(body, 3)}.{signature}" if where == "payload" else f"{body}.{_flip(signature, 5)}"
    )
    with pytest.raises(InvalidLink) as caught:
        signer().verify(forged, now=T0)
    assert caught.value.reason == "bad_signature"


def test_forged_action_or_longer_life() -> None:
    s = signer()
    token = s.token("confirm", "a1", "jane", now=T0)
    body, signature = token.split(".")
    payload = msgspec.msgpack.decode(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload[1] = "deny"
    payload[4] += 365 * 86400
    forged_body = base64.urlsafe_b64encode(msgspec.msgpack.encode(payload)).rstrip(b"=").decode()
    with pytest.raises(InvalidLink) as caught:
        s.verify(f"{forged_body}.{signature}", now=T0)
    assert caught.value.reason == "bad_signature"


def test_signature_is_canonical() -> None:
    token = signer().token("confirm", "a1", "jane", now=T0)
    body, signature = token.split(".")
    # The last base64 character carries 2 padding bits: a variant decoding to the same
    # bytes must not verify.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    variant = signature[:-1] + alphabet[last ^ 1]
    with pytest.raises(InvalidLink):
        signer().verify(f"{body}.{variant}", now=T0)


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b.c", "!!!.xyz", "abc.", ".abc", "é.é", "a" * 5000 + "." + "b" * 43, " x.y"],
)
def test_malformed(token: str) -> None:
    with pytest.raises(InvalidLink) as caught:
        signer().verify(token, now=T0)
    assert caught.value.reason == "malformed"


def test_signed_garbage_is_malformed() -> None:
    s = signer()
    body = base64.urlsafe_b64encode(b"\xc1not msgpack").rstrip(b"=").decode()
    with pytest.raises(InvalidLink) as caught:
        s.verify(f"{body}.{s._sign(body)}", now=T0)
    assert caught.value.reason == "malformed"
    other_version = msgspec.msgpack.encode([2, "confirm", "a1", "jane", 2_000_000_000])
    body = base64.urlsafe_b64encode(other_version).rstrip(b"=").decode()
    with pytest.raises(InvalidLink) as caught:
        s.verify(f"{body}.{s._sign(body)}", now=T0)
    assert caught.value.reason == "malformed"


def test_configuration_is_checked() -> None:
    with pytest.raises(ValueError):
        LinkSigner(b"short", BASE)
    with pytest.raises(ValueError):
        LinkSigner(SECRET, "javascript:alert(1)")
    with pytest.raises(ValueError):
        LinkSigner(SECRET, BASE, timedelta(0))
    assert (
        LinkSigner(SECRET, "http://h:8000///")
        .url("a", "b", "c")
        .startswith("http://h:8000/v1/feedback/")
    )
