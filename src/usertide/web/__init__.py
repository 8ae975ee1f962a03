"""The HTTP layer (Starlette)."""

from usertide.web.app import create_app

__all__ = ["create_app"]
