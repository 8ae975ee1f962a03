"""Admin authentication: ``Authorization: Bearer <admin key>`` (or ``X-Admin-Key``)."""

from __future__ import annotations

from starlette.requests import Request

from usertide.service import Service
from usertide.web.errors import ApiError


def require_admin(request: Request) -> Service:
    service: Service = request.app.state.service
    header = request.headers.get("authorization", "")
    key = header[7:].strip() if header.lower().startswith("bearer ") else None
    key = key or request.headers.get("x-admin-key")
    if not key:
        raise ApiError(401, "unauthorized", "an admin key is required (Authorization: Bearer)")
    if service.keys.check("admin", key) is None:
        raise ApiError(401, "unauthorized", "unknown admin key")
    return service
