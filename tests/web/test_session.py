"""Dashboard sessions: sign-in, cookies, expiry, CSRF, sign-out, and the API's cookie
auth, in-process on a tiny app with the real routes and a stand-in key ring."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from usertide.web import session
from usertide.web.auth import require_admin
from usertide.web.errors import ApiError, api_error_handler
from usertide.web.session import LOGIN_CSRF_COOKIE, SESSION_COOKIE, SessionRegistry

KEY = "uta_right"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def make_app(clock: Clock, public_url: str | None = None) -> Starlette:
    async def protected(request: Request) -> Response:
        require_admin(request)
        return JSONResponse({"ok": True, "method": request.method})

    app = Starlette(
        routes=[
            *session.routes(),
            Route("/v1/thing", protected, methods=["GET", "POST", "DELETE"]),
        ],
        exception_handlers={ApiError: api_error_handler},
    )
    keys = SimpleNamespace(
        check=lambda kind, key: "kid" if kind == "admin" and key == KEY else None
    )
    app.state.service = SimpleNamespace(keys=keys, settings=SimpleNamespace(public_url=public_url))
    app.state.sessions = SessionRegistry(ttl=3600, clock=clock)
    return app


class AppClient:
    """A synchronous client calling the app in-process (httpx's ASGI transport)."""

    def __init__(self, app: Starlette, base_url: str = "http://testserver") -> None:
        self.app = app
        self._loop = asyncio.new_event_loop()
        self._http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=base_url, follow_redirects=False
        )

    @property
    def cookies(self) -> httpx.Cookies:
        return self._http.cookies

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        return self._loop.run_until_complete(self._http.request(method, url, **kw))

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def close(self) -> None:
        self._loop.run_until_complete(self._http.aclose())
        self._loop.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(clock: Clock) -> Iterator[AppClient]:
    c = AppClient(make_app(clock))
    yield c
    c.close()


def form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, html
    return found[1]


def sign_in(client: AppClient, key: str = KEY, next_: str = "/dashboard/") -> Any:
    page = client.get("/dashboard/login")
    assert page.status_code == 200
    return client.post(
        "/dashboard/login", data={"key": key, "csrf": form_token(page.text), "next": next_}
    )


def cookie_header(response: Any, name: str) -> str:
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(name + "=")]
    assert len(headers) == 1, response.headers
    return str(headers[0])


def test_sign_in_sets_a_strict_httponly_expiring_cookie(client: AppClient) -> None:
    r = sign_in(client, next_="/dashboard/users")
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/users"
    cookie = cookie_header(r, SESSION_COOKIE)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/;" in cookie
    assert "Max-Age=3600" in cookie
    assert "Secure" not in cookie  # plain http here
    token = client.cookies[SESSION_COOKIE]
    assert KEY not in cookie and len(token) >= 40  # a random token, never the key
    # the form's double-submit cookie is spent
    assert "Max-Age=0" in cookie_header(r, LOGIN_CSRF_COOKIE)


def test_the_login_page_sets_its_csrf_cookie(client: AppClient) -> None:
    r = client.get("/dashboard/login?next=/dashboard/alerts")
    cookie = cookie_header(r, LOGIN_CSRF_COOKIE)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert form_token(r.text) == client.cookies[LOGIN_CSRF_COOKIE]
    assert 'name="next" value="/dashboard/alerts"' in r.text
    assert r.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in r.headers["content-security-policy"]


@pytest.mark.parametrize("url", ["https://dash.example", None])
def test_cookie_is_secure_over_https(clock: Clock, url: str | None) -> None:
    # Over https itself, or behind a TLS proxy when the public URL is https.
    base = "http://testserver" if url else "https://testserver"
    c = AppClient(make_app(clock, public_url=url), base_url=base)
    try:
        page = c.get("/dashboard/login")
        assert "Secure" in cookie_header(page, LOGIN_CSRF_COOKIE)
        token = form_token(page.text)
        # The browser is on https (the proxy's side): it sends the Secure cookie back.
        c.cookies.clear()
        c.cookies.set(LOGIN_CSRF_COOKIE, token)
        r = c.post("/dashboard/login", data={"key": KEY, "csrf": token})
        assert r.status_code == 303
        assert "Secure" in cookie_header(r, SESSION_COOKIE)
    finally:
        c.close()


def test_a_wrong_key_is_refused_and_no_session_made(client: AppClient) -> None:
    r = sign_in(client, key="uta_wrong")
    assert r.status_code == 401 and "not an admin key" in r.text
    assert SESSION_COOKIE not in client.cookies
    assert len(client.app.state.sessions) == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("csrf", [None, "", "forged"])
def test_sign_in_without_the_forms_token_is_refused(client: AppClient, csrf: str | None) -> None:
    client.get("/dashboard/login")  # the cookie half is there; the form half is not
    data = {"key": KEY} if csrf is None else {"key": KEY, "csrf": csrf}
    r = client.post("/dashboard/login", data=data)
    assert r.status_code == 403
    assert SESSION_COOKIE not in client.cookies


def test_sign_in_without_the_cookie_half_is_refused(client: AppClient) -> None:
    token = form_token(client.get("/dashboard/login").text)
    client.cookies.clear()
    r = client.post("/dashboard/login", data={"key": KEY, "csrf": token})
    assert r.status_code == 403


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/", "/\\evil.example", "/v1/users", "javascript:x"],
)
def test_next_never_leaves_the_dashboard(client: AppClient, target: str) -> None:
    r = sign_in(client, next_=target)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/"


def test_api_accepts_the_session_cookie_for_reads(client: AppClient) -> None:
    assert client.get("/v1/thing").status_code == 401
    sign_in(client)
    r = client.get("/v1/thing")
    assert r.status_code == 200 and r.json() == {"ok": True, "method": "GET"}


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_unsafe_api_calls_with_the_cookie_need_the_csrf_header(
    client: AppClient, clock: Clock, method: str
) -> None:
    sign_in(client)
    r = client.request(method, "/v1/thing")
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    r = client.request(method, "/v1/thing", headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403
    registry: SessionRegistry = client.app.state.sessions
    good = registry.get(client.cookies[SESSION_COOKIE])
    assert good is not None
    r = client.request(method, "/v1/thing", headers={"X-CSRF-Token": good.csrf})
    assert r.status_code == 200


def test_the_admin_key_in_a_header_needs_no_csrf(client: AppClient) -> None:
    r = client.post("/v1/thing", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200
    # a wrong key in the header is refused even with a valid session cookie beside it
    sign_in(client)
    r = client.get("/v1/thing", headers={"Authorization": "Bearer uta_wrong"})
    assert r.status_code == 401


def test_sessions_expire(client: AppClient, clock: Clock) -> None:
    sign_in(client)
    clock.now += 3599
    assert client.get("/v1/thing").status_code == 200
    clock.now += 2
    assert client.get("/v1/thing").status_code == 401
    assert len(client.app.state.sessions) == 0  # type: ignore[attr-defined]


def test_sign_out_ends_the_session(client: AppClient) -> None:
    sign_in(client)
    token = client.cookies[SESSION_COOKIE]
    registry: SessionRegistry = client.app.state.sessions
    current = registry.get(token)
    assert current is not None
    # without the form's token: refused, the session stays
    assert client.post("/dashboard/logout", data={"csrf": "forged"}).status_code == 403
    assert client.get("/v1/thing").status_code == 200
    r = client.post("/dashboard/logout", data={"csrf": current.csrf})
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/login"
    assert "Max-Age=0" in cookie_header(r, SESSION_COOKIE)
    assert registry.get(token) is None
    # the old cookie, replayed, opens nothing
    client.cookies.set(SESSION_COOKIE, token)
    assert client.get("/v1/thing").status_code == 401


def test_the_login_page_sends_a_signed_in_browser_on(client: AppClient) -> None:
    sign_in(client)
    r = client.get("/dashboard/login?next=/dashboard/trends")
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/trends"


def test_registry_prunes_and_stays_bounded(clock: Clock) -> None:
    registry = SessionRegistry(ttl=10, clock=clock, limit=3)
    tokens = [registry.create()[0] for _ in range(3)]
    fourth, _ = registry.create()
    assert len(registry) == 3 and registry.get(tokens[0]) is None  # the oldest went
    assert registry.get(fourth) is not None
    clock.now += 11
    registry.create()
    assert len(registry) == 1  # the expired ones were dropped at the sign-in
    assert registry.get(None) is None and registry.get("") is None
    registry.end(None)  # nothing to end: no error


def test_form_bodies_are_bounded(client: AppClient) -> None:
    client.get("/dashboard/login")
    r = client.post(
        "/dashboard/login",
        content=b"key=" + b"x" * (session.MAX_FORM_BYTES + 10),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 403  # read as an empty form: no token
