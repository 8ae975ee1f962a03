"""The direct import (no server running): what a damaged file held before the damage."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from usertide.importers.run import run_import
from usertide.store import DuckDBStore


def test_damaged_gzip_keeps_the_events_before_the_damage(tmp_path: Path) -> None:
    lines = "".join(
        json.dumps({"type": "track", "event": "E", "userId": f"u{n}", "messageId": f"m{n}"}) + "\n"
        for n in range(10)
    )
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(gzip.compress(lines.encode())[:-12])  # the end of the stream is missing
    data = tmp_path / "data"
    assert run_import(path, data_dir=data) == 2
    store = DuckDBStore(data / "usertide.duckdb")
    try:
        assert store.count_events() == 9  # the tenth line is cut
    finally:
        store.close()
