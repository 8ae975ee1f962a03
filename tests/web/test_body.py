"""Body decoding: every way browser SDKs pack a JSON body, and every way it goes wrong."""

from __future__ import annotations

import base64
import gzip
import zlib
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from usertide.capture import CaptureError
from usertide.events import FailureReason
from usertide.web.body import BodySpec, decode

JSON = b'{"event":"$pageview","distinct_id":"jane","properties":{"q":"a+b /?"}}'
LIMIT = 500 * 1024


def form(value: str, **fields: str) -> bytes:
    extra = "".join(f"&{k}={quote(v)}" for k, v in fields.items())
    return f"data={quote(value, safe='')}{extra}".encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("body", "spec"),
    [
        pytest.param(JSON, BodySpec(), id="plain-json"),
        pytest.param(JSON, BodySpec("text/plain"), id="text-plain-json"),
        pytest.param(gzip.compress(JSON), BodySpec("text/plain"), id="gzip-by-magic-only"),
        pytest.param(
            gzip.compress(JSON), BodySpec("text/plain", compression="gzip-js"), id="gzip-js-param"
        ),
        pytest.param(
            gzip.compress(JSON), BodySpec("application/json", "gzip"), id="content-encoding"
        ),
        pytest.param(zlib.compress(JSON), BodySpec(content_encoding="deflate"), id="deflate"),
        pytest.param(
            gzip.compress(gzip.compress(JSON)),
            BodySpec(content_encoding="gzip"),
            id="header-and-magic",
        ),
        pytest.param(JSON, BodySpec("text/plain", compression="gzip-js"), id="gzip-js-fallback"),
        pytest.param(
            b64(JSON).encode(), BodySpec("text/plain", compression="base64"), id="raw-base64"
        ),
        pytest.param(
            form(b64(JSON)), BodySpec(FORM, compression="base64"), id="beacon-form-base64"
        ),
        pytest.param(form(b64(JSON)), BodySpec(FORM), id="form-base64-sniffed"),
        pytest.param(form(b64(JSON), compression="base64"), BodySpec(FORM), id="form-field"),
        pytest.param(form(JSON.decode()), BodySpec(FORM), id="form-json"),
        pytest.param(
            form(b64(gzip.compress(JSON))), BodySpec(FORM, compression="base64"), id="b64-gzip"
        ),
        pytest.param(
            f"data={b64(JSON)}".encode(), BodySpec(FORM, compression="base64"), id="unescaped-plus"
        ),
        pytest.param(
            base64.urlsafe_b64encode(JSON).rstrip(b"="),
            BodySpec("text/plain", compression="base64"),
            id="urlsafe-unpadded",
        ),
        pytest.param(JSON, BodySpec("application/octet-stream"), id="octet-stream"),
    ],
)
def test_every_packing_gives_the_json(body: bytes, spec: BodySpec) -> None:
    assert decode(body, spec, LIMIT) == JSON


@pytest.mark.parametrize(
    ("body", "spec", "code"),
    [
        pytest.param(
            gzip.compress(JSON)[:-9], BodySpec("text/plain"), "invalid_compression", id="truncated"
        ),
        pytest.param(
            b"\x1f\x8b\x08\x00garbage", BodySpec("text/plain"), "invalid_compression", id="bad-gz"
        ),
        pytest.param(
            b"!!not-base64!!",
            BodySpec("text/plain", compression="base64"),
            "invalid_base64",
            id="bad-base64",
        ),
        pytest.param(form("@@@"), BodySpec(FORM), "invalid_base64", id="form-not-json-or-b64"),
        pytest.param(b"other=1", BodySpec(FORM), "invalid_form", id="form-without-data"),
        pytest.param(b"data=%ff%fe", BodySpec(FORM), "invalid_form", id="form-not-utf8"),
        pytest.param(
            b"xyz", BodySpec("text/plain", compression="lz64"), "unsupported_compression", id="lz"
        ),
        pytest.param(
            b"{}", BodySpec("text/plain", compression="gzip-js"), None, id="declared-gzip-json"
        ),
    ],
)
def test_bad_packing_is_a_400_kept_as_a_failed_event(
    body: bytes, spec: BodySpec, code: str | None
) -> None:
    if code is None:
        assert decode(body, spec, LIMIT) == b"{}"
        return
    with pytest.raises(CaptureError) as caught:
        decode(body, spec, LIMIT)
    assert (caught.value.status, caught.value.code) == (400, code)
    assert caught.value.reason is FailureReason.INVALID_ENCODING
    assert caught.value.message


@pytest.mark.parametrize(
    ("spec", "status", "code"),
    [
        (BodySpec("application/xml"), 415, "unsupported_media_type"),
        (BodySpec(content_encoding="br"), 415, "unsupported_encoding"),
    ],
)
def test_transport_refusals_are_not_kept(spec: BodySpec, status: int, code: str) -> None:
    with pytest.raises(CaptureError) as caught:
        decode(JSON, spec, LIMIT)
    assert (caught.value.status, caught.value.code, caught.value.reason) == (status, code, None)


def test_decompression_and_base64_are_bounded() -> None:
    bomb = gzip.compress(b"[" + b" " * 2_000_000 + b"]")
    for spec in (BodySpec("text/plain"), BodySpec(content_encoding="gzip")):
        with pytest.raises(CaptureError) as caught:
            decode(bomb, spec, LIMIT)
        assert caught.value.status == 413
    with pytest.raises(CaptureError) as caught:
        decode(b64(b"x" * 1000).encode(), BodySpec("text/plain", compression="base64"), 100)
    assert caught.value.status == 413


@given(st.binary(max_size=300), st.sampled_from([None, "gzip-js", "base64", "gzip"]))
def test_any_bytes_decode_or_give_a_body_error(body: bytes, compression: str | None) -> None:
    statuses = []
    for content_type in ("text/plain", FORM):
        try:
            decode(body, BodySpec(content_type, compression=compression), LIMIT)
        except CaptureError as exc:
            statuses.append(exc.status)
    assert all(400 <= status < 500 for status in statuses)
