"""The runtime file: written atomically and owner-only, read back, removed only by its owner."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from usertide import runtime_file
from usertide.runtime_file import RuntimeInfo


def info(token: str) -> RuntimeInfo:
    return RuntimeInfo(
        os.getpid(), runtime_file.process_started(), "http://127.0.0.1:1", token, 500_000, 32_000
    )


def test_written_owner_only_and_read_back(tmp_path: Path) -> None:
    path = runtime_file.write(tmp_path, info("utw_a"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert runtime_file.read(tmp_path) == info("utw_a")
    assert [p.name for p in tmp_path.iterdir()] == [runtime_file.FILE]  # no temp file left


def test_removed_only_with_its_own_token(tmp_path: Path) -> None:
    runtime_file.write(tmp_path, info("utw_new"))
    runtime_file.remove(tmp_path, "utw_old")  # a server that lost the data dir to another
    assert runtime_file.read(tmp_path) is not None
    runtime_file.remove(tmp_path, "utw_new")
    assert runtime_file.read(tmp_path) is None
    runtime_file.remove(tmp_path, "utw_new")  # already gone: nothing to do


def test_unreadable_or_damaged_file_is_no_server(tmp_path: Path) -> None:
    (tmp_path / runtime_file.FILE).write_text('{"pid": 1')
    assert runtime_file.read(tmp_path) is None
    assert runtime_file.live_server(tmp_path) is None
    assert runtime_file.live_server(tmp_path / "missing") is None


def test_urls_reach_wildcard_addresses_through_loopback() -> None:
    assert runtime_file.url_for(("0.0.0.0", 8000)) == "http://127.0.0.1:8000"
    assert runtime_file.url_for(("::", 8000, 0, 0)) == "http://[::1]:8000"
    assert runtime_file.url_for(("192.0.2.7", 80)) == "http://192.0.2.7:80"
    assert runtime_file.url_for(("fe80::1", 8000, 0, 0)) == "http://[fe80::1]:8000"
