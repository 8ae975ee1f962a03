"""Shared fixtures: a real usertide server (uvicorn in a thread) on a temp data dir."""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from usertide.config import Settings, load_settings
from usertide.server import BackgroundServer, free_port
from usertide.service import Service

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

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the engine has processed everything in the log."""
        assert self.service.runtime.wait_for(self.service.store.last_offset(), timeout)


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


@pytest.fixture
def live(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Live]:
    overrides = getattr(request, "param", {}) or {}
    settings = make_settings(tmp_path / "data", **overrides)
    server = BackgroundServer(settings)
    server.start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield Live(server.url, server.service, settings, client)
    server.stop()
