"""Fixtures for the notifier tests; the receivers themselves are in notify_support.py."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from notify_support import SmtpMode, SmtpServer, TlsFiles, WebhookReceiver, make_tls

from usertide.store import DuckDBStore


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


def _smtp(mode: SmtpMode, tls: TlsFiles) -> Iterator[SmtpServer]:
    server = SmtpServer(mode, tls)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server(tls: TlsFiles) -> Iterator[SmtpServer]:
    yield from _smtp("plain", tls)


@pytest.fixture
def starttls_server(tls: TlsFiles) -> Iterator[SmtpServer]:
    yield from _smtp("starttls", tls)


@pytest.fixture
def ssl_server(tls: TlsFiles) -> Iterator[SmtpServer]:
    yield from _smtp("ssl", tls)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.close()


@pytest.fixture
def tls_receiver(tls: TlsFiles) -> Iterator[WebhookReceiver]:
    server = WebhookReceiver(tls=tls)
    yield server
    server.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    s = DuckDBStore(tmp_path / "outbox.duckdb")
    s.migrate()
    yield s
    s.close()
