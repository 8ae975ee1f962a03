"""Shared fixtures: a real usertide server (uvicorn in a thread) on a temp data dir."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from livesupport import Live, make_settings
from usertide.server import BackgroundServer


@pytest.fixture
def live(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Live]:
    overrides = getattr(request, "param", {}) or {}
    settings = make_settings(tmp_path / "data", **overrides)
    server = BackgroundServer(settings)
    server.start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield Live(server.url, server.service, settings, client)
    server.stop()
