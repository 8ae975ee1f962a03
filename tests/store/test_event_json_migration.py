"""A DuckDB store from before queryable events gets their JSON columns filled."""

from __future__ import annotations

from pathlib import Path

import duckdb

from factories import event
from usertide.events import encode_event
from usertide.events.queryable import json_columns
from usertide.store import DuckDBStore
from usertide.store.schema import EVENT_JSON_STEP, MIGRATIONS


def test_migration_fills_properties_traits_and_context(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for step in MIGRATIONS[:EVENT_JSON_STEP]:
        for statement in step:
            con.execute(statement)
    con.execute("INSERT INTO schema_version VALUES (?)", [EVENT_JSON_STEP])
    old = [
        event(id="a", properties={"category": 4, "name": "x"}, traits={"plan": "pro"}, path="/p"),
        event(id="b"),
    ]
    for offset, e in enumerate(old, 1):
        con.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [offset, e.id, e.type, e.name, e.user_id, e.anonymous_id, e.session_id,
             e.context.page_path, None, e.timestamp, e.received_at, encode_event(e)],
        )  # fmt: skip
    con.close()

    store = DuckDBStore(path)
    store.migrate()
    rows = store.select(
        "SELECT id, properties, traits, context, json_extract_string(properties, '$.category') "
        "FROM events ORDER BY id"
    )
    a, b = rows
    assert a[1:4] == tuple(None if v is None else v.decode() for v in json_columns(old[0]))
    assert a[4] == "4"
    assert b[1] is None and b[2] is None
    store.close()
