"""The links in "was this you?" e-mails. A GET shows a confirmation page (mail scanners
follow links; they must not change anything); the button POSTs the answer."""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from usertide.notify import InvalidLink, LinkClaims
from usertide.service import Service
from usertide.web.alerts import apply_feedback
from usertide.web.errors import ApiError

_QUESTION = {
    "safe": "Confirm that this sign-in was you",
    "compromised": "Report that this sign-in was not you",
}
_DONE = {
    "safe": "Thanks — we will remember this device and place.",
    "compromised": "Thanks — we have flagged this sign-in. Change your password now.",
}


def _page(title: str, body: str, status: int = 200) -> Response:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<meta name='viewport' content='width=device-width'></head><body style='font-family:"
        f"sans-serif;max-width:36em;margin:3em auto'><h1>{html.escape(title)}</h1>{body}"
        "</body></html>",
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "form-action 'self'",
        },
    )


def _claims(request: Request) -> tuple[Service, LinkClaims]:
    service: Service = request.app.state.service
    if service.links is None:
        raise ApiError(404, "not_found", "feedback links are not enabled")
    try:
        return service, service.links.verify(request.path_params["token"])
    except InvalidLink as exc:
        raise ApiError(400, "invalid_link", f"this link is not valid: {exc}") from exc


async def show(request: Request) -> Response:
    try:
        service, claims = _claims(request)
    except ApiError as exc:
        return _page("Link not valid", f"<p>{html.escape(exc.message)}</p>", exc.status)
    alert = service.store.alert_get(claims.alert_id)
    if alert is None:
        return _page("Link not valid", "<p>This sign-in is no longer on record.</p>", 404)
    where = (
        ", ".join(str(x) for x in (alert.data.get("city"), alert.data.get("country_name")) if x)
        or "an unknown place"
    )
    question = _QUESTION.get(claims.action, "Answer")
    body = (
        f"<p>Sign-in from <strong>{html.escape(str(alert.data.get('device')))}</strong> near "
        f"<strong>{html.escape(where)}</strong> at "
        f"{html.escape(alert.occurred_at.strftime('%Y-%m-%d %H:%M UTC'))}.</p>"
        f"<form method='post'><button type='submit'>{html.escape(question)}</button></form>"
    )
    return _page(question, body)


async def answer(request: Request) -> Response:
    try:
        service, claims = _claims(request)
        await apply_feedback(service, claims.alert_id, claims.action, "user_link")
    except ApiError as exc:
        return _page(
            "Could not record your answer", f"<p>{html.escape(exc.message)}</p>", exc.status
        )
    return _page("Thank you", f"<p>{html.escape(_DONE.get(claims.action, ''))}</p>")


def routes() -> list[Route]:
    return [
        Route("/v1/feedback/{token:str}", show, methods=["GET"]),
        Route("/v1/feedback/{token:str}", answer, methods=["POST"]),
    ]
