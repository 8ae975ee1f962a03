"""The dashboard's pages: overview, trends, funnels, users, sessions, recommendations,
alerts.

Each page is a template the browser fills from the JSON API with the session cookie
(``static/dashboard/*.js``); without a valid session a page sends the browser to the
sign-in page and shows nothing. Values from the request (a user id in the path) reach
the page only through autoescaped template variables.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from usertide import __version__
from usertide.service import Service
from usertide.web import session
from usertide.web.assets import plotly_version
from usertide.web.openapi import param
from usertide.web.templating import render

STREAM_PATH = "/v1/stream"
REFRESH_SECONDS = 3

NAV = (
    ("overview", "/dashboard/", "Overview"),
    ("trends", "/dashboard/trends", "Trends"),
    ("funnels", "/dashboard/funnels", "Funnels"),
    ("users", "/dashboard/users", "Users"),
    ("sessions", "/dashboard/sessions", "Sessions"),
    ("recommendations", "/dashboard/recommendations", "Recommendations"),
    ("alerts", "/dashboard/alerts", "Alerts"),
)


def _has_route(request: Request, path: str) -> bool:
    routes: list[BaseRoute] = request.app.routes
    return any(getattr(route, "path", None) == path for route in routes)


def _page(request: Request, template: str, nav: str, **extra: Any) -> Response:
    signed_in = session.current(request)
    if signed_in is None:
        return session.login_redirect(request)
    context = {
        "csrf": signed_in.csrf,
        "nav": NAV,
        "active": nav,
        "version": __version__,
        "plotly_version": plotly_version(),
        **extra,
    }
    return render(template, context)


async def home(request: Request) -> Response:
    return RedirectResponse(session.HOME, status_code=303)


async def overview(request: Request) -> Response:
    # The live panel listens to the event stream where the server has one, else polls.
    return _page(
        request,
        "overview.html",
        "overview",
        stream=_has_route(request, STREAM_PATH),
        refresh=REFRESH_SECONDS,
    )


async def trends(request: Request) -> Response:
    return _page(request, "trends.html", "trends")


async def funnels(request: Request) -> Response:
    return _page(request, "funnels.html", "funnels")


async def users(request: Request) -> Response:
    return _page(request, "users.html", "users")


async def user(request: Request) -> Response:
    service: Service = request.app.state.service
    if not request.path_params["user_id"]:  # "/dashboard/users/": the search page
        return RedirectResponse("/dashboard/users", status_code=303)
    return _page(
        request,
        "user.html",
        "users",
        user_id=request.path_params["user_id"],
        login_events=list(service.login_risk.config.login_events),
    )


async def sessions(request: Request) -> Response:
    # Scores change at every event and the table is rewritten at each checkpoint: poll.
    return _page(request, "sessions.html", "sessions", refresh=REFRESH_SECONDS)


async def recommendations(request: Request) -> Response:
    # The visitor's list follows their clicks: poll.
    return _page(request, "recommendations.html", "recommendations", refresh=REFRESH_SECONDS)


async def alerts(request: Request) -> Response:
    return _page(request, "alerts.html", "alerts")


async def alert(request: Request) -> Response:
    return _page(request, "alert.html", "alerts", alert_id=request.path_params["alert_id"])


PAGES: tuple[tuple[str, Any, str], ...] = (
    ("/dashboard/", overview, "Live overview: traffic, active users, top values, failures"),
    ("/dashboard/trends", trends, "Trends: events over time, measured and broken down"),
    ("/dashboard/funnels", funnels, "Funnels: conversion between steps, with credible intervals"),
    ("/dashboard/users", users, "Users: search"),
    ("/dashboard/users/{user_id:path}", user, "A user's profile, sign-ins, alerts and timeline"),
    ("/dashboard/sessions", sessions, "Sessions: the most anomalous now, with their reasons"),
    (
        "/dashboard/recommendations",
        recommendations,
        "Recommendations: click-through per recommender, and what a visitor would see",
    ),
    ("/dashboard/alerts", alerts, "Alerts: list and filter"),
    ("/dashboard/alerts/{alert_id:str}", alert, "One alert's evidence; answer safe/compromised"),
)


def routes() -> list[Route]:
    return [
        Route("/", home, methods=["GET"]),
        *(Route(path, endpoint, methods=["GET"]) for path, endpoint, _ in PAGES),
    ]


def _described(path: str, summary: str) -> dict[str, Any]:
    names = [part[1:].split(":")[0] for part in path.split("/") if part.startswith("{")]
    return {
        "get": {
            "summary": summary,
            "description": "An HTML page; without a dashboard session, a redirect to sign in.",
            "tags": ["dashboard"],
            "security": [{}],  # the dashboard session cookie
            "parameters": [param(name, "path") for name in names],
            "responses": {
                "200": {"description": "The page", "content": {"text/html": {}}},
                "303": {"description": "No session: to /dashboard/login"},
            },
        }
    }


OPENAPI: dict[str, dict[str, Any]] = {
    "/": {
        "get": {
            "summary": "The dashboard (a redirect to /dashboard/)",
            "tags": ["dashboard"],
            "security": [{}],
            "responses": {"303": {"description": "To /dashboard/"}},
        }
    },
    **{
        path.replace(":path}", "}").replace(":str}", "}"): _described(path, s)
        for path, _, s in PAGES
    },
}
