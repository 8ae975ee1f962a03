"""``usertide import`` while ``usertide serve`` runs on the data dir: through the server.

Real processes throughout: the server is ``usertide serve`` (tests/serverproc.py), the
import is the command in a subprocess, and what arrived is read back with the admin API.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from livesupport import ADMIN_KEY
from serverproc import ServerProcess
from usertide import runtime_file
from usertide.importers import open_importer
from usertide.importers.base import ImportRecord
from usertide.importers.remote import BatchSender
from usertide.keys import digest
from usertide.server import free_port
from usertide.store import DuckDBStore

pytestmark = pytest.mark.slow

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
ACCESS_LOG = "\n".join(
    [
        f'203.0.113.9 - - [10/Oct/2024:13:55:36 -0700] "GET /pricing?plan=pro HTTP/1.1" 200 2326 '
        f'"https://www.google.com/" "{FIREFOX}"',
        f'203.0.113.9 - - [10/Oct/2024:13:55:37 -0700] "GET /static/app.css HTTP/1.1" 304 - '
        f'"https://example.com/pricing" "{FIREFOX}"',
        '198.51.100.7 - alice [10/Oct/2024:20:56:01 +0000] "POST /api/cart HTTP/2.0" 201 87 '
        '"-" "-"',
        "this is not a log line at all",
        '192.0.2.44 - - [10/Oct/2024:20:58:01 +0000] "GET /wp-login.php HTTP/1.1" 404 0 "-" "-"',
    ]
)


def jsonl_lines() -> list[str]:
    track = {
        "type": "track",
        "event": "Order Completed",
        "userId": "jane",
        "messageId": "m-order",
        "timestamp": "2024-05-01T10:00:00Z",
        "properties": {"revenue": 42},
        "context": {"ip": "203.0.113.9"},
    }
    no_ip = {"type": "page", "userId": "jane", "messageId": "m-page", "name": "Pricing"}
    no_message_id = {"type": "identify", "userId": "jane", "traits": {"plan": "pro"}}
    exported_with_key = {
        "type": "track",
        "event": "Signed Up",
        "anonymousId": "a-1",
        "messageId": "m-signup",
        "writeKey": "utw_of_some_other_source",
    }
    posthog = {"event": "$pageview", "distinct_id": "bob", "uuid": "m-posthog", "properties": {}}
    no_event_name = {"type": "track", "userId": "jane", "messageId": "m-bad"}
    lines = [track, no_ip, no_message_id, exported_with_key, posthog, no_event_name]
    return (
        [json.dumps(line) for line in lines[:3]]
        + ["{not json"]
        + [json.dumps(line) for line in lines[3:]]
    )


def write_files(tmp_path: Path) -> tuple[Path, Path]:
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(jsonl_lines()) + "\n")
    access = tmp_path / "access.log"
    access.write_text(ACCESS_LOG + "\n")
    return events, access


def expected_ids(*paths: Path) -> list[str]:
    """The messageIds of the records the server takes (not the ones it refuses)."""
    ids = []
    for path in paths:
        for record in open_importer(path).records():
            if isinstance(record, ImportRecord) and record.payload.get("messageId") != "m-bad":
                ids.append(record.payload["messageId"])
    return ids


def import_cli(path: Path, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "usertide.cli", "import", str(path), "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


def all_events(url: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "1000"} | ({"cursor": cursor} if cursor else {})
        answer = httpx.get(
            f"{url}/v1/events", params=params, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
        answer.raise_for_status()
        page = answer.json()
        events += page["events"]
        cursor = page["next_cursor"]
        if cursor is None:
            return events


def flat(text: str) -> str:
    """Output with rich's line wrapping undone."""
    return re.sub(r"\s+", " ", text)


def test_import_goes_through_the_running_server_exactly_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    events_file, access_file = write_files(tmp_path)
    server = ServerProcess(data).start()
    try:
        for _ in range(2):  # the second import of the same files adds nothing
            for path in (events_file, access_file):
                done = import_cli(path, data)
                assert done.returncode == 0, done.stderr
                assert f"importing through the running server at {server.url}" in done.stdout
                assert "Traceback" not in done.stderr
            summary = flat(done.stdout)
            assert "4 events accepted by the server" in summary  # the access log's
            assert "1 lines were not sent" in summary
            assert "line 4: not in combined or common log format" in summary

        events = all_events(server.url)
        ids = [event["id"] for event in events]
        assert sorted(ids) == sorted(expected_ids(events_file, access_file))
        assert len(ids) == len(set(ids)) == 9
        by_id = {event["id"]: event for event in events}
        # The events' own addresses are kept; one without gets none (not the importer's).
        assert by_id["m-order"]["context"]["ip"] == "203.0.113.0"
        assert "ip" not in by_id["m-page"]["context"]
        assert "user_agent" not in by_id["m-page"]["context"]
        assert {event["write_key_id"] for event in events} == {"import"}
        assert {event["source"] for event in events} == {"import"}
        assert by_id["m-posthog"]["user_id"] == "bob"

        failed = httpx.get(
            f"{server.url}/v1/failed-events", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        ).json()
        assert {f["reason"] for f in failed["failed_events"]} == {"missing_event_name"}
    finally:
        server.stop()


def test_runtime_file_and_its_token_live_as_long_as_the_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    path = data / runtime_file.FILE
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        info = runtime_file.read(data)
        assert info is not None
        assert server.proc is not None and info.pid == server.proc.pid
        assert info.url == server.url
        assert runtime_file.live_server(data) == info
        token = info.token
        batch = {"batch": [{"type": "track", "event": "E", "userId": "u", "messageId": "m-1"}]}
        sent = httpx.post(f"{server.url}/v1/batch", json=batch, auth=(token, ""))
        assert sent.status_code == 200, sent.text
        # A write key only: it reads nothing.
        read = httpx.get(f"{server.url}/v1/events", headers={"Authorization": f"Bearer {token}"})
        assert read.status_code == 401
    finally:
        server.stop()
    assert not path.exists()  # removed on a clean stop
    log = server.log.read_text()
    assert token not in log  # neither printed nor logged

    store = DuckDBStore(data / "usertide.duckdb")  # nor stored
    try:
        assert digest(token) not in store.keys("write").values()
    finally:
        store.close()

    again = ServerProcess(data, port=server.port).start()
    try:
        info = runtime_file.read(data)
        assert info is not None and info.token != token
        stale = httpx.post(f"{again.url}/v1/batch", json=batch, auth=(token, ""))
        assert stale.status_code == 401
    finally:
        again.stop()


def test_stale_runtime_file_is_ignored(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    events_file, _ = write_files(tmp_path)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    nobody = f"http://127.0.0.1:{free_port()}"
    stale = [
        # the process is gone
        runtime_file.RuntimeInfo(gone.pid, 0.0, nobody, "utw_gone", 500_000, 32_000),
        # the process runs (this one), but nothing answers at the URL
        runtime_file.RuntimeInfo(
            os.getpid(), runtime_file.process_started(), nobody, "utw_x", 500_000, 32_000
        ),
    ]
    for info in stale:
        runtime_file.write(data, info)
        done = import_cli(events_file, data)
        assert done.returncode == 0, done.stderr
        assert "importing through" not in done.stdout
        assert "events stored" in flat(done.stdout)


def holding_the_store(data: Path) -> list[str]:
    """A process that opens the data dir's store, says ``ready`` and keeps it."""
    hold = (
        "import sys, time\n"
        "from usertide.store import DuckDBStore\n"
        "store = DuckDBStore(sys.argv[1])\n"
        "print('ready', flush=True)\n"
        "time.sleep(120)\n"
    )
    return [sys.executable, "-c", hold, str(data / "usertide.duckdb")]


def test_locked_store_without_server_is_explained(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    events_file, _ = write_files(tmp_path)
    command = holding_the_store(data)
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
            done = import_cli(events_file, data)
        finally:
            holder.kill()
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    message = flat(done.stderr)
    assert f"in use by process {holder.pid} (" in message
    assert "no running usertide server was found there" in message
    assert "wait for it to finish" in message


def test_rate_limited_import_waits_and_delivers_everything(tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = tmp_path / "many.jsonl.gz"
    lines = [
        json.dumps({"type": "track", "event": "Tick", "userId": f"u{n}", "messageId": f"t-{n}"})
        for n in range(120)
    ]
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    # Batches of half of 4 kB: several requests, of which the burst of 1 admits one a time.
    server = ServerProcess(
        data,
        USERTIDE_MAX_BATCH_BYTES="4000",
        USERTIDE_RATE_LIMIT_RPS="5",
        USERTIDE_RATE_LIMIT_BURST="1",
    ).start()
    try:
        done = import_cli(path, data)
        assert done.returncode == 0, done.stderr
        assert "120 events accepted by the server" in flat(done.stdout)
        ids = [event["id"] for event in all_events(server.url)]
        assert sorted(ids) == sorted(f"t-{n}" for n in range(120))
        metrics = httpx.get(
            f"{server.url}/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        ).text
        assert re.search(r'usertide_requests_rejected_total\{code="rate_limited"\} [1-9]', metrics)
    finally:
        server.stop()


def test_sender_waits_for_a_server_that_restarts(tmp_path: Path) -> None:
    """Connection refused is retried, and the restarted server's new token is taken."""
    data = tmp_path / "data"
    port = free_port()
    # What an importer holds when the server it found stops: its URL and an old token.
    old = runtime_file.RuntimeInfo(
        os.getpid(), 0.0, f"http://127.0.0.1:{port}", "utw_old", 500_000, 32_000
    )
    server = ServerProcess(data, port=port)
    starter = threading.Timer(1.0, server.start)
    item = json.dumps({"type": "track", "event": "Back", "userId": "u", "messageId": "m-back"})
    starter.start()
    try:
        with httpx.Client(trust_env=False) as client:
            sender = BatchSender(old, data, client)
            assert sender.send([item.encode()]) == (1, 0)
        assert sender.info.token != "utw_old"
        starter.join()
        assert [event["id"] for event in all_events(server.url)] == ["m-back"]
    finally:
        starter.join()
        server.stop()


def test_a_second_server_on_a_held_data_dir_is_explained(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    command = holding_the_store(data)
    serve = [sys.executable, "-m", "usertide.cli", "serve", "--data-dir", str(data)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
            done = subprocess.run(
                [*serve, "--port", str(free_port())],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        finally:
            holder.kill()
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"is in use by process {holder.pid}" in flat(done.stderr)
    assert "another --data-dir" in flat(done.stderr)
