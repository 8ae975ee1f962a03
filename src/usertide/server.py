"""Running the service under uvicorn, in the foreground or in a background thread."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from usertide import runtime_file
from usertide.config import Settings
from usertide.keys import IMPORT_KEY_ID
from usertide.service import Service
from usertide.web import create_app

log = logging.getLogger(__name__)

STUCK_AFTER = 2.0  # seconds into shutdown when connections that take no bytes are cut


def uvicorn_config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        # X-Forwarded-For is honoured only by USERTIDE_TRUST_FORWARDED_FOR (ingestion),
        # not by uvicorn for any client on loopback.
        proxy_headers=False,
        log_level=settings.log_level,
        timeout_keep_alive=30,
        backlog=2048,
    )


class UsertideServer(uvicorn.Server):
    """uvicorn serving the service, announced in the data dir's runtime file while it
    listens (so ``usertide import`` can send events through it, see ``runtime_file``)."""

    def __init__(self, service: Service, settings: Settings) -> None:
        self.service = service
        self.runtime_token: str | None = None
        super().__init__(uvicorn_config(create_app(service), settings))

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.should_exit or not self.servers or not self.servers[0].sockets:
            return
        settings = self.service.settings
        token = runtime_file.new_token()
        self.service.keys.add_temporary("write", token, IMPORT_KEY_ID)
        self.runtime_token = token
        info = runtime_file.RuntimeInfo(
            pid=os.getpid(),
            started=runtime_file.process_started(),
            url=runtime_file.socket_url(self.servers[0].sockets[0]),
            token=token,
            max_batch_bytes=settings.max_batch_bytes,
            max_event_bytes=settings.max_event_bytes,
        )
        try:
            runtime_file.write(settings.data_dir, info)
        except OSError as exc:  # serving matters more; imports just cannot find this server
            log.warning("cannot write the runtime file in %s: %s", settings.data_dir, exc)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn waits for open responses and their connections before the lifespan's
        # shutdown: end the live streams first, or they would hold it forever.
        self.service.broadcaster.close()
        cutter = asyncio.create_task(self._cut_stuck(STUCK_AFTER))
        token = self.runtime_token
        if token is not None:
            runtime_file.remove(self.service.settings.data_dir, token)
        try:
            await super().shutdown(sockets)
        finally:
            cutter.cancel()
        if token is not None:
            self.service.keys.remove_temporary("write", token)
            self.runtime_token = None

    async def _cut_stuck(self, after: float) -> None:
        """Abort the connections of clients that stopped reading (a stream client's
        unsent bytes): closing waits for them to be flushed, i.e. forever."""
        await asyncio.sleep(after)
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None and transport.get_write_buffer_size() > 0:
                log.warning("cutting a connection that takes no data, to shut down")
                transport.abort()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class BackgroundServer:
    """The service in a thread of this process (the demo and benchmarks use it)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.service = Service.create(settings)
        self.server = UsertideServer(self.service, settings)
        self.thread = threading.Thread(target=self.server.run, name="usertide-http", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    def start(self, timeout: float = 30.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the usertide server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
