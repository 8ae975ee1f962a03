"""Unchanged third-party SDKs deliver to a real ``usertide serve`` process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from livesupport import ADMIN_KEY, WRITE_KEY
from serverproc import ServerProcess

pytestmark = pytest.mark.slow

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("sdk") / "data").start()
    yield proc
    proc.stop()


def events_of(server: ServerProcess, user_id: str) -> list[dict]:  # type: ignore[type-arg]
    server.wait_settled()
    r = httpx.get(
        f"{server.url}/v1/events", params={"user_id": user_id, "limit": 1000}, headers=ADMIN
    )
    return r.json()["events"]  # type: ignore[no-any-return]


def test_segment_analytics_python(server: ServerProcess) -> None:
    from segment.analytics.client import Client

    errors: list[Exception] = []
    client = Client(
        WRITE_KEY, host=server.url, on_error=lambda e, _: errors.append(e), upload_interval=0.05
    )
    client.identify(
        "seg-jane", {"email": "jane@example.com", "plan": "pro"}, anonymous_id="anon-seg"
    )
    client.track(
        "seg-jane",
        "Order Completed",
        {"revenue": 42.5},
        context={
            "ip": "77.88.8.8",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        },
    )
    client.page(
        "seg-jane", "Docs", "Getting started", {"path": "/docs", "url": "https://x.test/docs"}
    )
    client.flush()
    client.join()
    assert not errors
    events = events_of(server, "seg-jane")
    by_type = {e["type"]: e for e in events}
    assert set(by_type) == {"identify", "track", "page"}
    track = by_type["track"]
    assert track["name"] == "Order Completed" and track["properties"] == {"revenue": 42.5}
    assert track["context"]["library_name"] == "analytics-python"
    assert track["context"]["geo"]["country"] == "RU"
    assert by_type["page"]["context"]["page_path"] == "/docs"
    user = httpx.get(f"{server.url}/v1/users/seg-jane", headers=ADMIN).json()
    assert user["profile"]["traits"] == {"email": "jane@example.com", "plan": "pro"}
    assert user["profile"]["events"] == 3


@pytest.mark.parametrize("gzip", [False, True])
def test_posthog_python(server: ServerProcess, gzip: bool) -> None:
    from posthog import Posthog

    errors: list[Exception] = []
    user = f"ph-bob-{gzip}"
    client = Posthog(
        WRITE_KEY,
        host=server.url,
        gzip=gzip,
        flush_interval=0.05,
        on_error=lambda e, _: errors.append(e),
        enable_local_evaluation=False,
    )
    client.capture("signed up", distinct_id=user, properties={"plan": "team", "$set": {"x": 1}})
    client.capture(
        "$pageview",
        distinct_id=user,
        properties={"$current_url": "https://x.test/pricing", "$pathname": "/pricing"},
    )
    client.flush()
    client.shutdown()
    assert not errors
    events = events_of(server, user)
    assert sorted(e["type"] for e in events) == ["page", "track"]
    signup = next(e for e in events if e["type"] == "track")
    assert signup["name"] == "signed up" and signup["properties"]["plan"] == "team"
    assert signup["traits"] == {"x": 1}
    page = next(e for e in events if e["type"] == "page")
    assert page["context"]["page_path"] == "/pricing"


def test_usertide_client(server: ServerProcess) -> None:
    from usertide import Client

    with Client(WRITE_KEY, host=server.url, flush_interval=0.05) as client:
        client.identify("ut-carol", {"plan": "free"}, anonymous_id="anon-carol")
        for i in range(250):
            client.track("ut-carol", "clicked", {"i": i})
    events = events_of(server, "ut-carol")
    assert len(events) == 251


def test_sdk_with_wrong_key_is_refused(server: ServerProcess) -> None:
    r = httpx.post(
        f"{server.url}/v1/batch",
        json={"batch": [{"type": "track", "event": "e", "userId": "u"}]},
        auth=("wrong", ""),
    )
    assert r.status_code == 401


def test_import_command_then_serve(tmp_path: Path) -> None:
    from usertide.importers.run import run_import

    log = tmp_path / "access.log"
    log.write_text(
        '203.0.113.5 - - [20/Nov/2026:10:00:00 +0000] "GET /p/1 HTTP/1.1" 200 512 "-" '
        '"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0.0.0 Safari/537.36"\n'
        '203.0.113.5 - - [20/Nov/2026:10:00:30 +0000] "GET /p/2 HTTP/1.1" 200 512 '
        '"https://x.test/p/1" "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0.0.0"\n'
        "this is not a log line\n"
    )
    data = tmp_path / "data"
    assert run_import(log, data_dir=data) == 0
    assert run_import(log, data_dir=data) == 0  # idempotent
    proc = ServerProcess(data).start()
    try:
        health = proc.wait_settled()
        assert health["log"]["offset"] >= 2 and health["engine"]["users"] >= 1
        r = httpx.get(f"{proc.url}/v1/events", headers=ADMIN).json()
        assert [e["context"]["page_path"] for e in r["events"]] == ["/p/1", "/p/2"]
        assert all(e["type"] == "page" and e["source"] == "import" for e in r["events"])
        failed = httpx.get(f"{proc.url}/v1/failed-events", headers=ADMIN).json()
        assert failed["total"] >= 1
    finally:
        proc.stop()
