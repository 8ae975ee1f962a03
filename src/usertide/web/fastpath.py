"""The ingestion fast path: POSTs to the ingestion endpoints (and the risk API,
predictions) and GETs of recommendations skip the framework.

Ingestion is the one hot path (thousands of requests a second from SDKs and browsers);
Starlette's middleware stack, router and response plumbing cost about a quarter of
the CPU of such a request. This ASGI wrapper hands those requests straight to the same
handler the routes use and sends its answer with the headers the CORS middleware would
add; everything else (other paths, other methods, CORS preflights) goes to the app.
"""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from usertide.service import Service
from usertide.web import ingest, predict, recommendations, risk
from usertide.web.errors import ApiError, error_response
from usertide.web.ingest import Handler

log = logging.getLogger(__name__)

# What CORSMiddleware(allow_origins=["*"], expose_headers=["Retry-After"]) adds to a
# simple (non-preflight) response, with and without an Origin header in the request.
_VARY = [(b"vary", b"Origin")]
_CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", b"Retry-After"),
    *_VARY,
]


class IngestFastPath:
    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service
        self.paths = ingest.paths()
        # Other hot POSTs answered the same way: the synchronous risk API is called for
        # every sign-in of the application, and waits for its record's fsync.
        self.direct: dict[str, Handler] = {"/v1/risk/login": risk.risk_login}
        # Predictions: scored in microseconds, so the framework would be most of the cost.
        self.direct.update(predict.HANDLERS)
        # Recommendations: asked for on every page view of a shop.
        self.direct_get: dict[str, Handler] = {
            "/v1/recommendations": recommendations.recommendations
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = direct = None
        if scope["type"] == "http":
            method = scope["method"]
            if method == "POST":
                path = scope["path"]
                route = self.paths.get(path)
                direct = self.direct.get(path) if route is None else None
            elif method == "GET":
                direct = self.direct_get.get(scope["path"])
        if route is None and direct is None:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app
        request = Request(scope, receive)
        try:
            if route is not None:
                response = await ingest.ingest(request, self.service, *route)
            else:
                assert direct is not None
                response = await direct(request)
        except ClientDisconnect:
            return  # the client left before sending its body: no one to answer
        except ApiError as exc:
            response = error_response(exc.status, exc.code, exc.message, headers=exc.headers)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            response = error_response(500, "internal_error", "an internal error occurred")
        origin = any(name == b"origin" for name, _ in scope["headers"])
        await _send(send, response, _CORS if origin else _VARY)


async def _send(send: Send, response: Response, extra: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": [*response.raw_headers, *extra],
        }
    )
    await send({"type": "http.response.body", "body": response.body})
