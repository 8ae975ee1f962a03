"""``GET /v1/stream``: live events, detections and alerts as server-sent events.

The broadcaster (``usertide.live``) fills each client's bounded queue without waiting;
this module writes the queue out. A write the client does not take within
``write_timeout`` (or, once the stream must end, within ``grace``) is abandoned and the
connection closed, so a client that stops reading never holds a slot or the server's
shutdown. ``limit`` and ``timeout`` end a stream by themselves (scripts, and the
OpenAPI fuzzer, which could not read a stream that never ends).
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from usertide.live import KINDS, Broadcaster, StreamFilter, Subscription, sse
from usertide.web.auth import require_admin
from usertide.web.errors import ApiError
from usertide.web.openapi import admin, errors, param
from usertide.web.params import whole_number

log = logging.getLogger(__name__)

PATH = "/v1/stream"
BATCH = 256  # messages per write: one chunk, not one syscall per message
MAX_LIMIT = 1_000_000
MAX_TIMEOUT = 86_400.0
MAX_NAMES = 100
MAX_ID = 512


class EventStream(Response):
    """The response: written straight to ASGI so that every write can be bounded in
    time and a disconnect or shutdown noticed while waiting."""

    media_type = "text/event-stream"

    def __init__(
        self, broadcaster: Broadcaster, sub: Subscription, limit: int | None, timeout: float | None
    ) -> None:
        self.status_code = 200
        self.background = None
        # No caching, and no buffering by nginx (X-Accel-Buffering), or events wait.
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.broadcaster = broadcaster
        self.sub = sub
        self.limit = limit
        self.timeout = timeout
        self._send: Send | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._send = send
        listener = asyncio.create_task(self._listen(receive))
        try:
            start = {"status": self.status_code, "headers": self.raw_headers}
            if not await self._write({"type": "http.response.start", **start}):
                return
            if scope["method"] == "HEAD":
                await self._write({"type": "http.response.body", "body": b""})
                return
            if await self._pump():
                dropped = self.sub.ended == "dropped"
                ending = sse.message("dropped", {"reason": "too_slow"}) if dropped else b""
                await self._write({"type": "http.response.body", "body": ending})
        finally:
            listener.cancel()
            self.broadcaster.unsubscribe(self.sub)

    async def _listen(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.sub.stop()

    async def _pump(self) -> bool:
        """Write messages until the stream ends; ``False`` if the client is gone."""
        sub, loop = self.sub, asyncio.get_running_loop()
        deadline = None if self.timeout is None else loop.time() + self.timeout
        left = self.limit
        if not await self._chunk(sse.RETRY):
            return False
        while True:
            if sub.stopped.is_set():
                return sub.ended is not None  # ended by the broadcaster, else disconnected
            if sub.frames:
                take = min(len(sub.frames), BATCH, left if left is not None else BATCH)
                body = b"".join(sub.frames.popleft() for _ in range(take))
                if not await self._chunk(body):
                    return False
                if left is not None:
                    left -= take
                    if left == 0:
                        return True
                continue
            wait = self.broadcaster.heartbeat
            if deadline is not None:
                wait = min(wait, deadline - loop.time())
                if wait <= 0:
                    return True
            sub.wake.clear()  # no await since the queue was found empty: nothing missed
            try:
                await asyncio.wait_for(sub.wake.wait(), wait)
            except TimeoutError:  # silent for a heartbeat (unless the stream is over)
                beat = deadline is None or loop.time() < deadline
                if beat and not await self._chunk(sse.PING):
                    return False

    async def _chunk(self, body: bytes) -> bool:
        return await self._write({"type": "http.response.body", "body": body, "more_body": True})

    async def _write(self, message: Message) -> bool:
        """Send one message; ``False`` if the client did not take it in time (the
        write is abandoned: uvicorn then closes the connection)."""
        assert self._send is not None
        sending = asyncio.ensure_future(self._send(message))
        stopped = self.sub.stopped
        if not stopped.is_set():
            stopping = asyncio.ensure_future(stopped.wait())
            await asyncio.wait(
                {sending, stopping},
                timeout=self.broadcaster.write_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            stopping.cancel()
        if not sending.done():  # the stream must end, or the client stopped reading
            await asyncio.wait({sending}, timeout=self.broadcaster.grace)
        if not sending.done():
            sending.cancel()
            log.warning("a stream client takes no data: closing its connection")
            return False
        sending.result()
        return True


def _filter(request: Request) -> StreamFilter:
    params = request.query_params
    user = params.get("user_id")
    if user is not None and not 0 < len(user) <= MAX_ID:
        raise ApiError(400, "invalid_parameter", f"'user_id' must be 1 to {MAX_ID} characters")
    names = _listed(request, "name")
    if names is not None and (len(names) > MAX_NAMES or any(len(n) > MAX_ID for n in names)):
        raise ApiError(
            400, "invalid_parameter", f"'name' takes at most {MAX_NAMES} names of {MAX_ID} chars"
        )
    kinds = _listed(request, "kinds")
    if kinds is not None and not kinds <= set(KINDS):
        raise ApiError(400, "invalid_parameter", f"'kinds' must be among {', '.join(KINDS)}")
    return StreamFilter(user=user, names=names, kinds=kinds or frozenset(KINDS))


def _listed(request: Request, name: str) -> frozenset[str] | None:
    """A repeatable, comma-separated parameter; ``None`` when absent."""
    raw = request.query_params.getlist(name)
    if not raw:
        return None
    values = frozenset(v.strip() for item in raw for v in item.split(",") if v.strip())
    if not values:
        raise ApiError(400, "invalid_parameter", f"'{name}' must not be empty")
    return values


def _limit(request: Request) -> int | None:
    if request.query_params.get("limit") is None:
        return None
    return whole_number(request, "limit", 0, 1, MAX_LIMIT)


def _timeout(request: Request) -> float | None:
    raw = request.query_params.get("timeout")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= MAX_TIMEOUT:  # also refuses nan
        raise ApiError(
            400,
            "invalid_parameter",
            f"'timeout' must be seconds, above 0 and at most {MAX_TIMEOUT:g}",
        )
    return seconds


async def stream(request: Request) -> Response:
    service = require_admin(request)
    wants, limit, timeout = _filter(request), _limit(request), _timeout(request)
    sub = service.broadcaster.subscribe(wants)
    if sub is None:
        raise ApiError(503, "unavailable", "too many stream clients, or shutting down")
    return EventStream(service.broadcaster, sub, limit, timeout)


def routes() -> list[Route]:
    return [Route(PATH, stream, methods=["GET"])]


_LIST = {"type": "array", "items": {"type": "string"}}
OPENAPI: dict[str, dict[str, Any]] = {
    PATH: {
        "get": admin(
            {
                "summary": "Live events, detections and alerts (server-sent events)",
                "description": (
                    "Messages `event: event` (`id:` its log offset), `event: detection` and"
                    " `event: alert`, each with one JSON object as `data:`; a `: ping`"
                    " comment every 15 s of silence. A client more than 1,000 messages"
                    " behind gets `event: dropped` and the stream ends. `name` filters"
                    " events only; `user_id` matches an event's user or anonymous id and"
                    " the user of a detection or alert."
                ),
                "tags": ["events"],
                "parameters": [
                    param("user_id", schema={"type": "string", "minLength": 1}),
                    param("name", schema=_LIST),
                    param("kinds", schema={"type": "array", "items": {"enum": list(KINDS)}}),
                    param("limit", schema={"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
                    param(
                        "timeout",
                        schema={"type": "number", "exclusiveMinimum": 0, "maximum": MAX_TIMEOUT},
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "The stream",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **errors(400, 503),
                },
            }
        )
    }
}
