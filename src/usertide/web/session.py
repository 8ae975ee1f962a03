"""Dashboard sign-in: the admin key once, then a server-side session in a cookie.

A session is a random token the browser holds in an HttpOnly, SameSite=Strict cookie;
the server keeps only its SHA-256 (so a lookup compares no secret) with an expiry and
the session's CSRF token, in memory: a restart signs everyone out, and the admin key
itself is never stored in the browser. Forms and unsafe API calls made with the cookie
must also carry the CSRF token (SameSite already stops other sites; the token also
stops same-site pages on other ports and old browsers). The sign-in form, before any
session exists, uses a double-submit token: a cookie and the same value in the form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from usertide.service import Service
from usertide.web.openapi import param
from usertide.web.templating import render

SESSION_COOKIE = "usertide_session"
LOGIN_CSRF_COOKIE = "usertide_login_csrf"
CSRF_HEADER = "x-csrf-token"
DEFAULT_TTL = 12 * 3600.0
MAX_SESSIONS = 10_000  # only an admin can make one; bounded all the same
MAX_FORM_BYTES = 16 * 1024
LOGIN_PATH = "/dashboard/login"
HOME = "/dashboard/"


@dataclass(frozen=True, slots=True)
class Session:
    expires: float
    csrf: str

    def csrf_ok(self, supplied: str | None) -> bool:
        return supplied is not None and hmac.compare_digest(supplied, self.csrf)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class SessionRegistry:
    """Sessions by the digest of their token; expired ones are dropped as found and at
    every sign-in."""

    def __init__(
        self,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.time,
        limit: int = MAX_SESSIONS,
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self.limit = limit
        self._sessions: dict[bytes, Session] = {}
        self._lock = threading.Lock()

    def create(self) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        now = self.clock()
        session = Session(expires=now + self.ttl, csrf=secrets.token_urlsafe(32))
        with self._lock:
            self._prune(now)
            while len(self._sessions) >= self.limit:  # the oldest goes (insertion order)
                del self._sessions[next(iter(self._sessions))]
            self._sessions[_digest(token)] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        key = _digest(token)
        with self._lock:
            session = self._sessions.get(key)
            if session is not None and session.expires <= self.clock():
                del self._sessions[key]
                return None
        return session

    def end(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(_digest(token), None)

    def __len__(self) -> int:
        return len(self._sessions)

    def _prune(self, now: float) -> None:
        expired = [key for key, s in self._sessions.items() if s.expires <= now]
        for key in expired:
            del self._sessions[key]


def current(request: Request) -> Session | None:
    """The request's valid dashboard session, if it has one."""
    registry: SessionRegistry | None = getattr(request.app.state, "sessions", None)
    if registry is None:
        return None
    return registry.get(request.cookies.get(SESSION_COOKIE))


def login_redirect(request: Request) -> RedirectResponse:
    """Where a page sends a browser without a session: sign in, then come back."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{LOGIN_PATH}?next={quote(here, safe='/')}", status_code=303)


def safe_next(value: str | None) -> str:
    """Only a dashboard path on this origin (no open redirect through ``next``)."""
    if (
        value
        and value.startswith("/dashboard")
        and not value.startswith("//")
        and "\\" not in value
        and value.isprintable()
    ):
        return value
    return HOME


async def _form(request: Request) -> dict[str, str]:
    """A small URL-encoded form; anything else reads as an empty one."""
    body = b""
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return {}
    except ClientDisconnect:
        return {}
    try:
        fields = parse_qs(body.decode(), max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {name: values[0] for name, values in fields.items()}


def _secure(request: Request) -> bool:
    """Secure cookies over https, and whenever the service says it is public over https
    (behind a TLS proxy the request itself arrives as http)."""
    service: Service = request.app.state.service
    public = service.settings.public_url or ""
    return request.url.scheme == "https" or public.startswith("https://")


def _login_page(request: Request, status: int = 200, error: str | None = None) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    context: dict[str, Any] = {
        "csrf": token,
        "next": safe_next(request.query_params.get("next")),
        "error": error,
    }
    response = render("login.html", context, status)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path=LOGIN_PATH,
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )
    return response


async def login_form(request: Request) -> Response:
    if current(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return _login_page(request)


async def login(request: Request) -> Response:
    form = await _form(request)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    supplied = form.get("csrf")
    if not expected or not supplied or not hmac.compare_digest(expected, supplied):
        return _login_page(request, 403, "The sign-in form expired: please try again.")
    service: Service = request.app.state.service
    if service.keys.check("admin", form.get("key", "").strip() or None) is None:
        return _login_page(request, 401, "That is not an admin key.")
    registry: SessionRegistry = request.app.state.sessions
    token, _ = registry.create()
    response = RedirectResponse(safe_next(form.get("next")), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(registry.ttl),
        path="/",
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(
        LOGIN_CSRF_COOKIE,
        path=LOGIN_PATH,
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )
    return response


async def logout(request: Request) -> Response:
    session = current(request)
    form = await _form(request)
    if session is not None and not session.csrf_ok(form.get("csrf")):
        return render("message.html", {"message": "Sign-out refused: reload the page."}, 403)
    request.app.state.sessions.end(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=_secure(request), httponly=True, samesite="strict"
    )
    return response


def routes() -> list[Route]:
    return [
        Route(LOGIN_PATH, login_form, methods=["GET"]),
        Route(LOGIN_PATH, login, methods=["POST"]),
        Route("/dashboard/logout", logout, methods=["POST"]),
    ]


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _form_body(*fields: str) -> dict[str, Any]:
    schema = {
        "type": "object",
        "required": ["csrf"],
        "properties": {name: {"type": "string"} for name in fields},
    }
    return {
        "required": True,
        "content": {"application/x-www-form-urlencoded": {"schema": schema}},
    }


_REDIRECT = {"description": "Redirect (Location)", "headers": {"Location": {"schema": {}}}}

OPENAPI: dict[str, dict[str, Any]] = {
    LOGIN_PATH: {
        "get": {
            "summary": "The dashboard's sign-in page (sets the form's CSRF cookie)",
            "tags": ["dashboard"],
            "security": [{}],
            "parameters": [param("next")],
            "responses": {"200": _html("The sign-in form"), "303": _REDIRECT},
        },
        "post": {
            "summary": "Sign in with the admin key: sets the session cookie",
            "tags": ["dashboard"],
            "security": [{}],
            "requestBody": _form_body("key", "csrf", "next"),
            "responses": {
                "303": {**_REDIRECT, "description": "Signed in: to the dashboard"},
                "401": _html("Unknown admin key"),
                "403": _html("Missing or wrong CSRF token"),
            },
        },
    },
    "/dashboard/logout": {
        "post": {
            "summary": "End the dashboard session",
            "tags": ["dashboard"],
            "security": [{}],  # the session cookie (and the form's CSRF token)
            "requestBody": _form_body("csrf"),
            "responses": {
                "303": {**_REDIRECT, "description": "Signed out: to the sign-in page"},
                "403": _html("Missing or wrong CSRF token"),
            },
        }
    },
}
