"""Request bodies as browser SDKs send them, decoded to the JSON text inside.

SDKs do not always say how they packed a body. posthog-js gzips with the browser's
``CompressionStream`` and then drops ``compression=gzip-js`` from the URL; its
page-leave beacon sends ``data=<base64 of the JSON>`` form-encoded; Segment's
analytics.js posts JSON as ``text/plain`` (a CORS-simple type). So, like PostHog's own
capture service, the collector trusts what the bytes show over what the request says:

1. ``Content-Encoding: gzip|deflate`` is undone first (a transport encoding);
2. a form body (``application/x-www-form-urlencoded``) gives its ``data`` field, and
   may carry ``compression`` like the query string;
3. ``compression=base64`` (or a form ``data`` that is not JSON) is base64-decoded;
4. gzip is recognised by its magic bytes, whatever the parameters say.

Every problem is a :class:`CaptureError` naming it (with a ``reason`` when the body is
kept as a failed event: it was an event, just badly packed), never an exception of the
decoders.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from urllib.parse import parse_qs

import msgspec

from usertide.capture.errors import CaptureError
from usertide.events import FailureReason

GZIP_MAGIC = b"\x1f\x8b"
JSON_TYPES = frozenset(
    {"application/json", "text/plain", "application/x-ndjson", "application/octet-stream"}
)
FORM_TYPE = "application/x-www-form-urlencoded"
COMPRESSIONS = frozenset({"gzip", "gzip-js", "base64"})
_JSON_START = frozenset(b"{[ \t\r\n")


class BodySpec(msgspec.Struct, frozen=True):
    """What the request says about its body."""

    content_type: str = "application/json"  # the media type, lower case, no parameters
    content_encoding: str = ""  # lower case
    compression: str | None = None  # the ``compression`` query parameter


def too_large(limit: int) -> CaptureError:
    return CaptureError(413, "payload_too_large", f"the request body is larger than {limit} bytes")


def decode(body: bytes, spec: BodySpec, limit: int) -> bytes:
    """The JSON text inside ``body``; at most ``limit`` bytes after every decoding."""
    if spec.content_type not in JSON_TYPES and spec.content_type != FORM_TYPE:
        raise CaptureError(
            415,
            "unsupported_media_type",
            f"content type '{spec.content_type[:64]}' is not supported; send application/json,"
            " text/plain or form-encoded data=",
        )
    encoding = spec.content_encoding
    if encoding in ("gzip", "x-gzip", "deflate"):
        body = gunzip(body, limit)
    elif encoding not in ("", "identity"):
        raise CaptureError(
            415,
            "unsupported_encoding",
            f"content encoding '{encoding[:32]}' is not supported; send gzip or none",
        )
    compression = _compression(spec.compression)
    from_form = spec.content_type == FORM_TYPE and not body.startswith(GZIP_MAGIC)
    if from_form:
        body, form_compression = _form_data(body)
        compression = _compression(form_compression) or compression
    if compression == "base64" or (from_form and compression is None and _not_json(body)):
        body = _unbase64(body, limit)
    if body.startswith(GZIP_MAGIC):
        body = gunzip(body, limit)
    elif compression in ("gzip", "gzip-js") and _not_json(body):
        body = gunzip(body, limit)  # declared gzip without the magic: say what is wrong
    return body


def gunzip(data: bytes, limit: int) -> bytes:
    # wbits=47 accepts gzip and zlib headers; max_length bounds a decompression bomb.
    decompressor = zlib.decompressobj(wbits=47)
    try:
        out = decompressor.decompress(data, limit + 1)
    except zlib.error as exc:
        raise _invalid_gzip(f"the body is not valid gzip ({exc})") from exc
    if len(out) > limit or decompressor.unconsumed_tail:
        raise too_large(limit)
    if not decompressor.eof:
        raise _invalid_gzip("the gzip body is truncated")
    return out


def _invalid_gzip(message: str) -> CaptureError:
    return CaptureError(400, "invalid_compression", message, reason=FailureReason.INVALID_ENCODING)


def _compression(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip().lower()
    if value not in COMPRESSIONS:
        raise CaptureError(
            400,
            "unsupported_compression",
            f"compression '{value[:32]}' is not supported; use gzip, gzip-js or base64",
            reason=FailureReason.INVALID_ENCODING,
        )
    return value


def _form_data(body: bytes) -> tuple[bytes, str | None]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CaptureError(
            400, "invalid_form", "the form body is not UTF-8", reason=FailureReason.INVALID_ENCODING
        ) from exc
    try:
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=64, errors="strict")
    except ValueError as exc:
        raise CaptureError(
            400,
            "invalid_form",
            f"the form body is not valid: {exc}",
            reason=FailureReason.INVALID_ENCODING,
        ) from exc
    data = fields.get("data")
    if not data:
        raise CaptureError(
            400,
            "invalid_form",
            "the form body has no 'data' field",
            reason=FailureReason.INVALID_ENCODING,
        )
    compression = fields.get("compression")
    return data[0].encode("utf-8"), compression[0] if compression else None


def _not_json(body: bytes) -> bool:
    return bool(body) and body[0] not in _JSON_START


def _unbase64(data: bytes, limit: int) -> bytes:
    # Form decoding turns an unescaped '+' into a space; URL-safe alphabets and missing
    # padding are accepted too.
    cleaned = data.strip().replace(b" ", b"+").replace(b"-", b"+").replace(b"_", b"/")
    cleaned += b"=" * (-len(cleaned) % 4)
    if len(cleaned) * 3 // 4 > limit:
        raise too_large(limit)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CaptureError(
            400,
            "invalid_base64",
            f"the body is not valid base64 ({exc})",
            reason=FailureReason.INVALID_ENCODING,
        ) from exc
