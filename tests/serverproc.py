"""``usertide serve`` as a separate process, for tests that need a real one (SDKs, kill -9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from livesupport import ADMIN_KEY, WRITE_KEY
from usertide.server import free_port


class ServerProcess:
    def __init__(self, data_dir: Path, *, port: int | None = None, **env: str) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.env = {
            **os.environ,
            "USERTIDE_ADMIN_KEY": ADMIN_KEY,
            "USERTIDE_WRITE_KEY": WRITE_KEY,
            "USERTIDE_LOG_LEVEL": "warning",
            "USERTIDE_RATE_LIMIT_RPS": "1000000",
            "USERTIDE_RATE_LIMIT_BURST": "1000000",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        cmd = [
            sys.executable,
            "-m",
            "usertide.cli",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
        ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def health(self) -> dict:  # type: ignore[type-arg]
        r = httpx.get(f"{self.url}/healthz", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        return r.json()  # type: ignore[no-any-return]

    def wait_settled(self, timeout: float = 30.0) -> dict:  # type: ignore[type-arg]
        deadline = time.monotonic() + timeout
        while True:
            health = self.health()
            if health["engine"]["lag_events"] == 0:
                return health
            if time.monotonic() > deadline:
                raise AssertionError(f"engine did not catch up: {health}")
            time.sleep(0.05)
