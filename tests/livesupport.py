"""Shared test helpers: keys, settings, and the handle on a live server."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import httpx

from usertide.config import Settings, load_settings
from usertide.server import free_port
from usertide.service import Service
from usertide.store import Store

ADMIN_KEY = "uta_test_admin_key"
WRITE_KEY = "utw_test_write_key"


@dataclass
class Live:
    url: str
    service: Service
    settings: Settings
    client: httpx.Client

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_KEY}"}

    @property
    def write(self) -> dict[str, str]:
        token = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    @property
    def store(self) -> Store:
        """The store once it holds everything acknowledged so far."""
        assert self.service.loader.wait_for(self.service.committer.last_offset)
        return self.service.store

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the engine has processed everything in the log."""
        assert self.service.runtime.wait_for(self.service.committer.last_offset, timeout)


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    return load_settings(
        {},
        data_dir=data_dir,
        admin_key=ADMIN_KEY,
        write_key=WRITE_KEY,
        port=free_port(),
        log_level="warning",
        **overrides,
    )
