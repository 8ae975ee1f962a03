"""Shared fixtures: a real usertide server (uvicorn in a thread) on a temp data dir."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))

from livesupport import Live, make_settings
from stores import IMPLEMENTATIONS, StoreFactory
from usertide.server import BackgroundServer
from usertide.store import Store

# CI runs the property-based tests with a fixed seed, so whether a submission lands does
# not depend on which examples happened to be drawn; a local `dev.py test` draws new
# ones every run and keeps any failure it finds in .hypothesis/ until it is fixed.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("USERTIDE_CI"):
    settings.load_profile("ci")


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Opens a store of each implementation (over the same files each time)."""
    return IMPLEMENTATIONS[request.param](tmp_path)


@pytest.fixture
def store(factory: StoreFactory) -> Iterator[Store]:
    s = factory()
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BackgroundServer]:
    """A server a test may stop itself (stopping again is harmless)."""
    srv = BackgroundServer(make_settings(tmp_path / "data"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def live(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Live]:
    overrides = getattr(request, "param", {}) or {}
    settings = make_settings(tmp_path / "data", **overrides)
    server = BackgroundServer(settings)
    server.start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield Live(server.url, server.service, settings, client)
    server.stop()
