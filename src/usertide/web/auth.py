"""Admin authentication: ``Authorization: Bearer <admin key>`` (or ``X-Admin-Key``), or
the dashboard's session cookie.

With the cookie, a request that changes something (any method but GET, HEAD, OPTIONS)
must also carry the session's CSRF token in ``X-CSRF-Token``: a browser attaches the
cookie to requests other pages make, never that header. A key in a header needs no
token (no browser sends one by itself).
"""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request

from usertide.service import Service
from usertide.web import session
from usertide.web.errors import ApiError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def require_admin(request: Request) -> Service:
    service: Service = request.app.state.service
    header = request.headers.get("authorization", "")
    key = header[7:].strip() if header.lower().startswith("bearer ") else None
    key = key or request.headers.get("x-admin-key")
    if key:
        if service.keys.check("admin", key) is None:
            raise ApiError(401, "unauthorized", "unknown admin key")
        return service
    signed_in = session.current(request)
    if signed_in is None:
        raise ApiError(401, "unauthorized", "an admin key is required (Authorization: Bearer)")
    if request.method not in SAFE_METHODS and not signed_in.csrf_ok(
        request.headers.get(session.CSRF_HEADER)
    ):
        raise ApiError(
            403, "csrf_failed", "with the session cookie, send the session's X-CSRF-Token"
        )
    return service


def basic_username(header: str | None) -> str | None:
    """The user name of an ``Authorization: Basic`` header (where SDKs put the write key),
    or ``None`` for any other or malformed header."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0] or None
