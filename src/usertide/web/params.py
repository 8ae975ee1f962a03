"""Request parameters and bodies shared by the API's handlers, validated with a 4xx
naming the problem."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request

from usertide.web.errors import ApiError


def is_whole_number(raw: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts '²' and other digits ``int`` refuses."""
    return raw.isascii() and raw.isdigit()


def whole_number(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    """The query parameter ``name`` as an integer in ``[lo, hi]``, or ``default`` if absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = int(raw) if is_whole_number(raw) and len(raw) <= 19 else None
    if value is None or not lo <= value <= hi:
        raise ApiError(
            400, "invalid_parameter", f"'{name}' must be a whole number from {lo} to {hi}"
        )
    return value


_decode_object = msgspec.json.Decoder(dict[str, Any]).decode


async def json_object(request: Request, limit: int) -> dict[str, Any]:
    """The request body as a JSON object of at most ``limit`` bytes."""
    body = await request.body()
    if len(body) > limit:
        raise ApiError(413, "payload_too_large", f"the body is over {limit} bytes")
    try:
        return _decode_object(body)
    except msgspec.DecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body must be a JSON object: {exc}") from exc
