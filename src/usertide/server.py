"""Running the service under uvicorn, in the foreground or in a background thread."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from usertide.config import Settings
from usertide.service import Service
from usertide.web import create_app


def uvicorn_config(service: Service, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(service),
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
        self.server = uvicorn.Server(uvicorn_config(self.service, settings))
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
