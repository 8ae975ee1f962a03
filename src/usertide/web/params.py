"""Query parameters shared by the API's handlers, validated with a 400 naming them."""

from __future__ import annotations

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
