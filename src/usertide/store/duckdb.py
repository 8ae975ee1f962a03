"""The embedded store: one DuckDB file holds the event log and everything else.

DuckDB connections are not safe to share between threads, so each thread gets its own
cursor; writes are serialized by one lock (DuckDB allows one writer per table at a
time, and the log's offsets must be assigned in commit order).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, get_args

import duckdb
import msgspec
import pyarrow as pa

from usertide.alerts.model import Alert
from usertide.analytics.sql import DUCKDB, Dialect
from usertide.events import Event, FailedEvent, FailureReason, decode_event, encode_event
from usertide.events.interaction import Interaction
from usertide.events.queryable import json_columns
from usertide.notify.model import Notification, NotificationStatus
from usertide.store.base import (
    EngineCommit,
    EraseReport,
    EventQuery,
    Item,
    ModelInfo,
    SessionQuery,
    SessionRecord,
    Store,
    StoreLocked,
    TopColumn,
    dedup_in_batch,
)
from usertide.store.schema import CURRENT_VERSION, EVENT_JSON_STEP, MIGRATIONS

_EVENT_SCHEMA = pa.schema(
    [
        ("offset", pa.int64()),
        ("id", pa.string()),
        ("type", pa.string()),
        ("name", pa.string()),
        ("user_id", pa.string()),
        ("anonymous_id", pa.string()),
        ("session_id", pa.string()),
        ("page_path", pa.string()),
        ("country", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("received_at", pa.timestamp("us", tz="UTC")),
        ("body", pa.binary()),
        ("properties", pa.string()),
        ("traits", pa.string()),
        ("context", pa.string()),
    ]
)


_LOADER = "\x1flog"  # the checkpoints row of the log loader
# DuckDB 1.x: 'IO Error: Could not set lock on file "…": Conflicting lock is held in
# /usr/bin/python3 (PID 5923) by user jane. See also …'
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


class DuckDBStore(Store):
    def __init__(self, path: str | Path = ":memory:", checkpoint_threshold: str = "256MB") -> None:
        self.path = str(path)
        try:
            self._root = duckdb.connect(self.path)
        except duckdb.IOException as exc:
            if "Could not set lock" not in str(exc):
                raise
            holder = _LOCK_HOLDER.search(str(exc))
            raise StoreLocked(
                str(exc),
                pid=int(holder["pid"]) if holder else None,
                program=holder["program"] if holder else None,
            ) from exc
        # A larger WAL before DuckDB folds it into the database file: the fold costs
        # about as much as the inserts it covers when it runs every 16 MB (the default).
        # Recovery after a crash replays at most this much WAL.
        self._root.execute(f"SET checkpoint_threshold = '{checkpoint_threshold}'")
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._write_lock = threading.RLock()
        self._next_offset = 1
        self._closed = False

    # -- lifecycle -------------------------------------------------------------
    def _con(self) -> duckdb.DuckDBPyConnection:
        con: duckdb.DuckDBPyConnection | None = getattr(self._local, "con", None)
        if con is None:
            con = self._root.cursor()
            self._local.con = con
            with self._write_lock:
                self._cursors.append(con)
        return con

    def migrate(self) -> int:
        con = self._con()
        with self._write_lock:
            con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            rows = con.execute("SELECT max(version) FROM schema_version").fetchall()
            version = int(rows[0][0]) if rows and rows[0][0] is not None else 0
            for step in range(version, CURRENT_VERSION):
                con.execute("BEGIN TRANSACTION")
                try:
                    for statement in MIGRATIONS[step]:
                        con.execute(statement)
                    if step == EVENT_JSON_STEP:
                        _backfill_event_json(con)
                    con.execute("INSERT INTO schema_version VALUES (?)", [step + 1])
                    con.execute("COMMIT")
                except Exception:
                    con.execute("ROLLBACK")
                    raise
            self._next_offset = self.last_offset() + 1
        return CURRENT_VERSION

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._write_lock:
            for cursor in self._cursors:
                cursor.close()
            self._root.close()

    # -- the event log -------------------------------------------------------------
    def append_events(self, events: Sequence[Event]) -> list[Event]:
        if not events:
            return []
        batch = dedup_in_batch(events)
        with self._write_lock:
            first = max(self._next_offset, self.loaded_through() + 1)
            for i, event in enumerate(batch):
                event.offset = first + i
            try:
                appended = self.load(batch, (), first + len(batch) - 1)
            except Exception:
                for event in batch:
                    event.offset = None
                raise
            self._next_offset = first + len(batch)
        return appended

    def load(
        self, events: Sequence[Event], failed: Sequence[FailedEvent], through: int | None
    ) -> list[Event]:
        batch = dedup_in_batch(events)
        con = self._con()
        with self._write_lock:
            # A plain INSERT costs well under half of one with ON CONFLICT ... RETURNING
            # (1.8 against 4 ms of CPU for a handful of rows), and a stretch of the log
            # seldom repeats a stored id (client retries, reloading after a crash): try
            # it plainly, and only when the primary key refuses it, again with the
            # conflict clause to learn which events are new.
            try:
                inserted = self._load(con, batch, failed, through, conflicts=False)
            except duckdb.ConstraintException:
                inserted = self._load(con, batch, failed, through, conflicts=True)
            if through is not None:
                self._next_offset = max(self._next_offset, through + 1)
            if batch and batch[-1].offset is not None:
                self._next_offset = max(self._next_offset, batch[-1].offset + 1)
        if inserted is None:
            return batch
        return [event for event in batch if event.offset in inserted]

    def _load(
        self,
        con: duckdb.DuckDBPyConnection,
        batch: list[Event],
        failed: Sequence[FailedEvent],
        through: int | None,
        *,
        conflicts: bool,
    ) -> set[int] | None:
        """One load in one transaction; the offsets inserted, or ``None`` for all."""
        statements = bool(batch) + bool(failed) + (through is not None)
        # One statement commits by itself: an explicit transaction costs more than the
        # statement for the small loads of light traffic.
        if statements > 1:
            con.execute("BEGIN TRANSACTION")
        try:
            inserted = self._insert_events(con, batch, conflicts) if batch else None
            if failed:
                self._insert_failed(con, failed)
            if through is not None:
                con.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?)", [_LOADER, through])
            if statements > 1:
                con.execute("COMMIT")
        except Exception:
            if statements > 1:
                con.execute("ROLLBACK")
            raise
        return inserted

    def _insert_events(
        self, con: duckdb.DuckDBPyConnection, batch: list[Event], conflicts: bool
    ) -> set[int] | None:
        table = pa.table(
            [
                pa.array([e.offset for e in batch], pa.int64()),
                pa.array([e.id for e in batch], pa.string()),
                pa.array([e.type for e in batch], pa.string()),
                pa.array([e.name for e in batch], pa.string()),
                pa.array([e.user_id for e in batch], pa.string()),
                pa.array([e.anonymous_id for e in batch], pa.string()),
                pa.array([e.session_id for e in batch], pa.string()),
                pa.array([e.context.page_path for e in batch], pa.string()),
                pa.array([_country(e) for e in batch], pa.string()),
                pa.array([e.timestamp for e in batch], pa.timestamp("us", tz="UTC")),
                pa.array([e.received_at for e in batch], pa.timestamp("us", tz="UTC")),
                pa.array([encode_event(e) for e in batch], pa.binary()),
                *_json_arrays(batch),
            ],
            schema=_EVENT_SCHEMA,
        )
        # One call: DuckDB finds the Arrow table by its local name (a replacement
        # scan). Each DuckDB call gives up the GIL and must win it back from the busy
        # HTTP and engine threads, so register/unregister around it cost double.
        incoming_events = table
        try:
            if not conflicts:
                con.execute("INSERT INTO events SELECT * FROM incoming_events")
                return None
            rows = con.execute(
                "INSERT INTO events SELECT * FROM incoming_events ON CONFLICT DO NOTHING "
                'RETURNING "offset"'
            ).fetchall()
            return {int(r[0]) for r in rows}
        finally:
            del incoming_events

    def loaded_through(self) -> int:
        row = (
            self._con()
            .execute('SELECT "offset" FROM checkpoints WHERE consumer = ?', [_LOADER])
            .fetchall()
        )
        # A store from before the log had segment files: its events table is the log.
        return int(row[0][0]) if row else self.last_offset()

    def read_log(self, after_offset: int, limit: int) -> list[Event]:
        rows = (
            self._con()
            .execute(
                'SELECT "offset", body FROM events WHERE "offset" > ? ORDER BY "offset" LIMIT ?',
                [after_offset, limit],
            )
            .fetchall()
        )
        return [_row_event(r) for r in rows]

    def last_offset(self) -> int:
        row = self._con().execute('SELECT coalesce(max("offset"), 0) FROM events').fetchall()
        return int(row[0][0]) if row else 0

    def query_events(self, query: EventQuery) -> list[Event]:
        clauses: list[str] = []
        params: list[Any] = []
        if query.user_id is not None:
            clauses.append(
                "(user_id = ? OR anonymous_id IN "
                "(SELECT anonymous_id FROM aliases WHERE user_id = ?) "
                "OR list_contains(?, anonymous_id))"
            )
            params += [query.user_id, query.user_id, list(query.linked_anonymous_ids)]
        if query.anonymous_id is not None:
            clauses.append("anonymous_id = ?")
            params.append(query.anonymous_id)
        if query.name is not None:
            clauses.append("name = ?")
            params.append(query.name)
        if query.since is not None:
            clauses.append("ts >= ?")
            params.append(query.since)
        if query.until is not None:
            clauses.append("ts < ?")
            params.append(query.until)
        if query.after_offset is not None:
            clauses.append('"offset" > ?')
            params.append(query.after_offset)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        params.append(query.limit)
        rows = (
            self._con()
            .execute(f'SELECT "offset", body FROM events {where} ORDER BY "offset" LIMIT ?', params)
            .fetchall()
        )
        return [_row_event(r) for r in rows]

    dialect: ClassVar[Dialect] = DUCKDB

    def select(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._con().execute(sql, list(params)).fetchall()

    def top_values(self, column: TopColumn, limit: int = 10) -> list[tuple[str, int]]:
        if column not in get_args(TopColumn):
            raise ValueError(f"cannot rank by {column!r}")
        rows = (
            self._con()
            .execute(
                f"SELECT {column}, count(*) AS n FROM events WHERE {column} IS NOT NULL "
                f"GROUP BY 1 ORDER BY n DESC, 1 LIMIT ?",
                [limit],
            )
            .fetchall()
        )
        return [(str(v), int(n)) for v, n in rows]

    def count_events(self) -> int:
        row = self._con().execute("SELECT count(*) FROM events").fetchall()
        return int(row[0][0]) if row else 0

    # -- failed events ------------------------------------------------------------
    def append_failed(self, failed: Sequence[FailedEvent]) -> None:
        if not failed:
            return
        con = self._con()
        with self._write_lock:
            self._insert_failed(con, failed)

    def _insert_failed(self, con: duckdb.DuckDBPyConnection, failed: Sequence[FailedEvent]) -> None:
        rows = [
            (
                f.id,
                f.reason.value,
                f.message,
                f.field,
                f.source,
                f.received_at,
                f.raw,
                f.user_id,
                f.anonymous_id,
            )
            for f in failed
        ]
        con.executemany(
            "INSERT INTO failed_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            rows,
        )

    def query_failed(self, limit: int = 100, reason: str | None = None) -> list[FailedEvent]:
        where, params = ("WHERE reason = ?", [reason]) if reason else ("", [])
        rows = (
            self._con()
            .execute(
                "SELECT id, reason, message, field, source, epoch_us(received_at), raw, user_id, "
                f"anonymous_id FROM failed_events {where} ORDER BY received_at DESC, id LIMIT ?",
                [*params, limit],
            )
            .fetchall()
        )
        return [
            FailedEvent(
                id=r[0],
                reason=FailureReason(r[1]),
                message=r[2],
                field=r[3],
                source=r[4],
                received_at=datetime.fromtimestamp(r[5] / 1e6, UTC),
                raw=r[6],
                user_id=r[7],
                anonymous_id=r[8],
            )
            for r in rows
        ]

    def count_failed(self) -> int:
        row = self._con().execute("SELECT count(*) FROM failed_events").fetchall()
        return int(row[0][0]) if row else 0

    # -- engine state -------------------------------------------------------------
    def commit_engine(self, commit: EngineCommit) -> None:
        con = self._con()
        upserts = [(k, v) for k, v in commit.states.items() if v is not None]
        deletes = [(k,) for k, v in commit.states.items() if v is None]
        profiles = [
            (k, msgspec.json.encode(v).decode())
            for k, v in commit.profiles.items()
            if v is not None
        ]
        profile_deletes = [(k,) for k, v in commit.profiles.items() if v is None]
        with self._write_lock:
            con.execute("BEGIN TRANSACTION")
            try:
                if upserts:
                    _bulk_upsert(
                        con, "user_state", ["key", "state"], upserts, [pa.string(), pa.binary()]
                    )
                if deletes:
                    con.execute(
                        "DELETE FROM user_state WHERE list_contains(?, key)",
                        [[k for (k,) in deletes]],
                    )
                if profiles:
                    _bulk_upsert(
                        con, "profiles", ["key", "profile"], profiles, [pa.string(), pa.string()]
                    )
                if profile_deletes:
                    con.execute(
                        "DELETE FROM profiles WHERE list_contains(?, key)",
                        [[k for (k,) in profile_deletes]],
                    )
                if commit.sessions:
                    _upsert_sessions(con, commit.sessions)
                if commit.interactions:
                    _insert_interactions(con, commit.interactions)
                if commit.aliases:
                    _bulk_upsert(
                        con,
                        "aliases",
                        ["anonymous_id", "user_id"],
                        list(commit.aliases.items()),
                        [pa.string(), pa.string()],
                    )
                con.execute(
                    "INSERT OR REPLACE INTO checkpoints VALUES (?, ?)",
                    [commit.consumer, commit.offset],
                )
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise

    def engine_offset(self, consumer: str) -> int:
        row = (
            self._con()
            .execute('SELECT "offset" FROM checkpoints WHERE consumer = ?', [consumer])
            .fetchall()
        )
        return int(row[0][0]) if row else 0

    def iter_states(self) -> Iterator[tuple[str, bytes]]:
        cursor = self._root.cursor()
        try:
            result = cursor.execute("SELECT key, state FROM user_state")
            while rows := result.fetchmany(10_000):
                for key, state in rows:
                    yield str(key), bytes(state)
        finally:
            cursor.close()

    def interactions(self, after_offset: int = -1, limit: int = 100_000) -> list[Interaction]:
        rows = (
            self._con()
            .execute(
                'SELECT "offset", event_id, user_key, session_id, item_id, kind, ts, '
                'properties FROM interactions WHERE "offset" > ? '
                'ORDER BY "offset", event_id, position LIMIT ?',
                [after_offset, limit],
            )
            .fetchall()
        )
        return [
            Interaction(
                offset=int(offset), event_id=event_id, user_key=user_key,
                session_id=session_id, item_id=item_id, kind=kind, timestamp=ts / 1e6,
                properties=msgspec.json.decode(properties) if properties else {},
            )
            for offset, event_id, user_key, session_id, item_id, kind, ts, properties in rows
        ]  # fmt: skip

    def items_put(self, items: Sequence[Item]) -> None:
        if not items:
            return
        latest = {item.item_id: item for item in items}  # the last of an id wins
        rows = [
            (i.item_id, msgspec.json.encode(i.properties).decode(), i.available,
             round(i.updated * 1e6))
            for i in latest.values()
        ]  # fmt: skip
        types = [pa.string(), pa.string(), pa.bool_(), pa.int64()]
        with self._write_lock:
            _bulk_upsert(
                self._con(), "items", ["item_id", "properties", "available", "updated"],
                rows, types,
            )  # fmt: skip

    def items_all(self) -> list[Item]:
        rows = (
            self._con()
            .execute("SELECT item_id, properties, available, updated FROM items ORDER BY item_id")
            .fetchall()
        )
        return [
            Item(item_id=item_id, properties=msgspec.json.decode(properties),
                 available=bool(available), updated=updated / 1e6)
            for item_id, properties, available, updated in rows
        ]  # fmt: skip

    def sessions(self, query: SessionQuery) -> list[SessionRecord]:
        where: list[str] = []
        params: list[Any] = []
        if query.user_keys:
            where.append("list_contains(?, user_key)")
            params.append(list(query.user_keys))
        if query.since is not None:
            where.append("ended >= ?")
            params.append(_micros(query.since))
        if query.until is not None:
            where.append("started < ?")
            params.append(_micros(query.until))
        if query.min_score is not None:
            where.append("anomaly_score >= ?")
            params.append(query.min_score)
        if query.label is not None:
            where.append("anomaly_label = ?")
            params.append(query.label)
        if query.order == "score":
            sort, direction = "coalesce(anomaly_score, -1.0)", "DESC"
        else:
            sort, direction = "ended", "DESC"
        if query.after is not None:
            where.append(f"({sort}, session_id) < (?, ?)")
            value = query.after[0] if query.order == "score" else round(query.after[0])
            params.extend([value, query.after[1]])
        sql = (
            "SELECT record FROM sessions"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + f" ORDER BY {sort} {direction}, session_id {direction} LIMIT ?"
        )
        rows = self._con().execute(sql, [*params, query.limit]).fetchall()
        return [msgspec.json.decode(r[0], type=SessionRecord) for r in rows]

    def closed_conversions(self, limit: int) -> list[tuple[float, dict[str, Any]]]:
        rows = (
            self._con()
            .execute(
                "SELECT ended, json_extract_string(record, '$.conversion') FROM ("
                "SELECT ended, record FROM sessions WHERE (closed OR ended < "
                f"(SELECT max(ended) FROM sessions) - {IDLE_MICROS}) AND "
                "json_extract_string(record, '$.conversion') IS NOT NULL "
                "ORDER BY ended DESC LIMIT ?) ORDER BY ended",
                [limit],
            )
            .fetchall()
        )
        decode = msgspec.json.Decoder(dict[str, Any]).decode
        return [(r[0] / 1e6, decode(r[1])) for r in rows if r[1]]

    def session_features(
        self, since: datetime | None, limit: int
    ) -> list[tuple[float, dict[str, float]]]:
        where, params = ("WHERE ended >= ?", [_micros(since)]) if since is not None else ("", [])
        rows = (
            self._con()
            .execute(
                "SELECT ended, json_extract_string(record, '$.features') FROM ("
                f"SELECT ended, record FROM sessions {where} ORDER BY ended DESC LIMIT ?"
                ") ORDER BY ended",
                [*params, limit],
            )
            .fetchall()
        )
        decode = msgspec.json.Decoder(dict[str, float]).decode
        return [(r[0] / 1e6, decode(r[1]) if r[1] else {}) for r in rows]

    def get_profile(self, key: str) -> dict[str, Any] | None:
        row = self._con().execute("SELECT profile FROM profiles WHERE key = ?", [key]).fetchall()
        if not row:
            return None
        profile: dict[str, Any] = msgspec.json.decode(row[0][0])
        return profile

    def aliases(self) -> dict[str, str]:
        rows = self._con().execute("SELECT anonymous_id, user_id FROM aliases").fetchall()
        return {str(a): str(u) for a, u in rows}

    # -- the notification outbox ----------------------------------------------------
    def outbox_add(self, items: Sequence[Notification]) -> int:
        if not items:
            return 0
        con = self._con()
        rows = [
            (n.id, n.status.value, n.next_attempt_at or n.created_at, _encode_note(n))
            for n in items
        ]
        added = 0
        with self._write_lock:
            for row in rows:
                added += len(
                    con.execute(
                        "INSERT INTO outbox VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING 1",
                        list(row),
                    ).fetchall()
                )
        return added

    def outbox_due(self, now: datetime, limit: int = 100) -> list[Notification]:
        rows = (
            self._con()
            .execute(
                "SELECT body FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? "
                "ORDER BY next_attempt_at, id LIMIT ?",
                [now, limit],
            )
            .fetchall()
        )
        return [_decode_note(bytes(r[0])) for r in rows]

    def outbox_save(self, item: Notification) -> None:
        con = self._con()
        with self._write_lock:
            con.execute(
                "UPDATE outbox SET status = ?, next_attempt_at = ?, body = ? WHERE id = ?",
                [
                    item.status.value,
                    item.next_attempt_at or item.created_at,
                    _encode_note(item),
                    item.id,
                ],
            )

    def outbox_list(
        self, status: NotificationStatus | None = None, limit: int = 100
    ) -> list[Notification]:
        where, params = ("WHERE status = ?", [status.value]) if status else ("", [])
        rows = (
            self._con()
            .execute(f"SELECT body FROM outbox {where} ORDER BY id LIMIT ?", [*params, limit])
            .fetchall()
        )
        return [_decode_note(bytes(r[0])) for r in rows]

    # -- alerts -------------------------------------------------------------------
    def alerts_add(self, alerts: Sequence[Alert]) -> set[str]:
        alerts = list({a.id: a for a in reversed(alerts)}.values())[::-1]  # first of each id
        if not alerts:
            return set()
        incoming_alerts = pa.table(
            [
                pa.array([a.id for a in alerts], pa.string()),
                pa.array([a.user_id for a in alerts], pa.string()),
                pa.array([a.status.value for a in alerts], pa.string()),
                pa.array([a.created_at for a in alerts], pa.timestamp("us", tz="UTC")),
                pa.array([_alert_encoder.encode(a) for a in alerts], pa.binary()),
            ],
            names=["id", "user_id", "status", "created_at", "body"],
        )
        con = self._con()
        try:
            with self._write_lock:  # DuckDB reads the Arrow table by its local name
                rows = con.execute(
                    "INSERT INTO alerts SELECT * FROM incoming_alerts ON CONFLICT DO NOTHING "
                    "RETURNING id"
                ).fetchall()
        finally:
            del incoming_alerts
        return {str(r[0]) for r in rows}

    def alert_get(self, alert_id: str) -> Alert | None:
        rows = self._con().execute("SELECT body FROM alerts WHERE id = ?", [alert_id]).fetchall()
        return _alert_decoder.decode(bytes(rows[0][0])) if rows else None

    def alert_save(self, alert: Alert) -> None:
        con = self._con()
        with self._write_lock:
            con.execute(
                "UPDATE alerts SET status = ?, body = ? WHERE id = ?",
                [alert.status.value, _alert_encoder.encode(alert), alert.id],
            )

    def alerts(
        self,
        *,
        status: str | None = None,
        user_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("status", status), ("user_id", user_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("created_at >= ?")
            params.append(since)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = (
            self._con()
            .execute(
                f"SELECT body FROM alerts {where} ORDER BY created_at DESC, id LIMIT ?",
                [*params, limit],
            )
            .fetchall()
        )
        return [_alert_decoder.decode(bytes(r[0])) for r in rows]

    # -- global model snapshots ----------------------------------------------------
    def model_put(
        self, name: str, version: int, data: bytes, meta: dict[str, Any] | None = None
    ) -> None:
        con = self._con()
        with self._write_lock:
            con.execute(
                "INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?)",
                [name, version, datetime.now(UTC), data, msgspec.json.encode(meta or {}).decode()],
            )

    def model_versions(self, name: str | None = None) -> list[ModelInfo]:
        where, params = ("WHERE name = ?", [name]) if name is not None else ("", [])
        rows = (
            self._con()
            .execute(
                f"SELECT name, version, created_at, meta FROM models {where} "
                "ORDER BY name, version DESC",
                params,
            )
            .fetchall()
        )
        return [
            ModelInfo(
                name=str(r[0]),
                version=int(r[1]),
                created_at=r[2].astimezone(UTC),
                meta=msgspec.json.decode(r[3] or "{}", type=dict[str, Any]),
            )
            for r in rows
        ]

    def model_latest(self, name: str) -> tuple[int, bytes] | None:
        rows = (
            self._con()
            .execute(
                "SELECT version, data FROM models WHERE name = ? ORDER BY version DESC LIMIT 1",
                [name],
            )
            .fetchall()
        )
        return (int(rows[0][0]), bytes(rows[0][1])) if rows else None

    def model_get(self, name: str, version: int) -> bytes | None:
        rows = (
            self._con()
            .execute("SELECT data FROM models WHERE name = ? AND version = ?", [name, version])
            .fetchall()
        )
        return bytes(rows[0][0]) if rows else None

    # -- keys ---------------------------------------------------------------------
    def put_key(self, key_id: str, kind: str, digest: str) -> None:
        con = self._con()
        with self._write_lock:
            con.execute("INSERT OR REPLACE INTO api_keys VALUES (?, ?, ?)", [key_id, kind, digest])

    def keys(self, kind: str) -> dict[str, str]:
        rows = (
            self._con()
            .execute("SELECT key_id, digest FROM api_keys WHERE kind = ?", [kind])
            .fetchall()
        )
        return {str(k): str(d) for k, d in rows}

    # -- privacy ------------------------------------------------------------------
    def erase_user(self, user_id: str) -> EraseReport:
        con = self._con()
        with self._write_lock:
            con.execute("BEGIN TRANSACTION")
            try:
                anon = [
                    str(r[0])
                    for r in con.execute(
                        "SELECT anonymous_id FROM aliases WHERE user_id = ?", [user_id]
                    ).fetchall()
                ]
                keys = [user_id, *(f"anon:{a}" for a in anon)]
                events = _count_delete(
                    con, "events", "user_id = ? OR list_contains(?, anonymous_id)", [user_id, anon]
                )
                failed = _count_delete(
                    con,
                    "failed_events",
                    "user_id = ? OR list_contains(?, anonymous_id)",
                    [user_id, anon],
                )
                states = _count_delete(con, "user_state", "list_contains(?, key)", [keys])
                profiles = _count_delete(con, "profiles", "list_contains(?, key)", [keys])
                aliases = _count_delete(con, "aliases", "user_id = ?", [user_id])
                alerts = _count_delete(con, "alerts", "user_id = ?", [user_id])
                sessions = _count_delete(con, "sessions", "list_contains(?, user_key)", [keys])
                con.execute("DELETE FROM interactions WHERE list_contains(?, user_key)", [keys])
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        return EraseReport(
            user_id=user_id,
            events=events,
            failed_events=failed,
            states=states,
            profiles=profiles,
            aliases=aliases,
            alerts=alerts,
            sessions=sessions,
        )

    # -- overview -------------------------------------------------------------------
    # A URL's host (RE2): after the scheme and any user info, up to the port or path.
    _HOST = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#:]+)"

    def received_per_minute(self, since: datetime, until: datetime) -> list[tuple[datetime, int]]:
        # Minutes as whole numbers since the epoch: no session time zone in the way.
        rows = (
            self._con()
            .execute(
                "SELECT epoch_us(received_at) // 60000000 AS m, count(*) FROM events "
                "WHERE received_at >= ? AND received_at < ? GROUP BY 1 ORDER BY 1",
                [since, until],
            )
            .fetchall()
        )
        return [(datetime.fromtimestamp(int(m) * 60, UTC), int(n)) for m, n in rows]

    def active_users(self, since: datetime) -> int:
        row = (
            self._con()
            .execute(
                "SELECT count(DISTINCT coalesce(e.user_id, a.user_id, 'anon:' || e.anonymous_id)) "
                "FROM events e LEFT JOIN aliases a "
                "ON e.user_id IS NULL AND a.anonymous_id = e.anonymous_id "
                "WHERE e.received_at >= ?",
                [since],
            )
            .fetchall()
        )
        return int(row[0][0]) if row else 0

    def top_received(
        self, column: TopColumn, since: datetime, limit: int = 10
    ) -> list[tuple[str, int]]:
        if column not in get_args(TopColumn):
            raise ValueError(f"cannot rank by {column!r}")
        rows = (
            self._con()
            .execute(
                f"SELECT {column}, count(*) AS n FROM events "
                f"WHERE received_at >= ? AND {column} IS NOT NULL "
                "GROUP BY 1 ORDER BY n DESC, 1 LIMIT ?",
                [since, limit],
            )
            .fetchall()
        )
        return [(str(v), int(n)) for v, n in rows]

    def top_sources(self, since: datetime, limit: int = 10) -> list[tuple[str, int]]:
        rows = (
            self._con()
            .execute(
                # MATERIALIZED: inlined, the CTE's JSON and regex work runs once for
                # the filter and again for the grouping (4x slower).
                f"""WITH raw AS MATERIALIZED (
                    SELECT json_extract_string(properties, '$.utm_source') AS utm,
                        json_extract_string(context, ['$.page_referrer', '$.page_url']) AS ru
                    FROM events WHERE type = 'page' AND received_at >= ?
                ), views AS MATERIALIZED (
                    SELECT nullif(utm, '') AS utm,
                        nullif(lower(regexp_extract(ru[1], {self._HOST!r}, 1)), '') AS referrer,
                        nullif(lower(regexp_extract(ru[2], {self._HOST!r}, 1)), '') AS site
                    FROM raw
                )
                SELECT coalesce(utm, referrer, '(direct)') AS source, count(*) AS n FROM views
                WHERE utm IS NOT NULL OR referrer IS NULL OR referrer IS DISTINCT FROM site
                GROUP BY 1 ORDER BY n DESC, 1 LIMIT ?""",
                [since, limit],
            )
            .fetchall()
        )
        return [(str(v), int(n)) for v, n in rows]

    def failed_reasons(self, since: datetime | None = None) -> list[tuple[str, int]]:
        where, params = ("WHERE received_at >= ?", [since]) if since is not None else ("", [])
        rows = (
            self._con()
            .execute(
                f"SELECT reason, count(*) AS n FROM failed_events {where} "
                "GROUP BY 1 ORDER BY n DESC, 1",
                params,
            )
            .fetchall()
        )
        return [(str(v), int(n)) for v, n in rows]

    # -- user search ----------------------------------------------------------------
    def search_users(
        self,
        *,
        search: str | None = None,
        tag: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[tuple[str, dict[str, Any]]]:
        clauses: list[str] = []
        params: list[Any] = []
        if after is not None:
            clauses.append("key > ?")
            params.append(after)
        if search:
            # Trait values joined by the unit separator (which a search cannot usefully
            # hold), so one substring test covers them all without spanning two.
            clauses.append(
                "(contains(lower(CASE WHEN starts_with(key, 'anon:') THEN substr(key, 6) "
                "ELSE key END), lower(?)) OR contains(lower(array_to_string("
                "json_extract_string(profile, '$.profile.traits.*'), chr(31))), lower(?)))"
            )
            params += [search, search]
        if tag:
            clauses.append(
                "list_contains(json_extract_string(profile, '$.tags.tags[*]'), lower(?))"
            )
            params.append(tag)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = (
            self._con()
            .execute(
                f"SELECT key, profile FROM profiles {where} ORDER BY key LIMIT ?", [*params, limit]
            )
            .fetchall()
        )
        return [
            (str(key), msgspec.json.decode(profile, type=dict[str, Any])) for key, profile in rows
        ]


_alert_encoder = msgspec.msgpack.Encoder()
_alert_decoder = msgspec.msgpack.Decoder(Alert)
_note_encoder = msgspec.msgpack.Encoder()
_note_decoder = msgspec.msgpack.Decoder(Notification)


def _encode_note(note: Notification) -> bytes:
    return _note_encoder.encode(note)


def _decode_note(data: bytes) -> Notification:
    return _note_decoder.decode(data)


def _country(event: Event) -> str | None:
    geo = event.context.geo
    return geo.country if geo is not None else None


def _json_arrays(batch: Sequence[Event]) -> list[Any]:
    properties: list[bytes | None] = []
    traits: list[bytes | None] = []
    contexts: list[bytes | None] = []
    for event in batch:
        p, t, c = json_columns(event)
        properties.append(p)
        traits.append(t)
        contexts.append(c)
    return [pa.array(column, pa.string()) for column in (properties, traits, contexts)]


def _backfill_event_json(con: duckdb.DuckDBPyConnection, chunk: int = 50_000) -> None:
    """Fill the JSON columns of events stored before they existed (a migration step;
    runs inside its transaction)."""
    after = 0
    while True:
        rows = con.execute(
            'SELECT "offset", body FROM events WHERE "offset" > ? ORDER BY "offset" LIMIT ?',
            [after, chunk],
        ).fetchall()
        if not rows:
            return
        events = [_row_event(r) for r in rows]
        filled = pa.table(
            [pa.array([e.offset for e in events], pa.int64()), *_json_arrays(events)],
            names=["offset", "properties", "traits", "context"],
        )
        con.register("filled", filled)
        con.execute(
            "UPDATE events SET properties = filled.properties, traits = filled.traits, "
            'context = filled.context FROM filled WHERE events."offset" = filled."offset"'
        )
        con.unregister("filled")
        after = int(rows[-1][0])


def _row_event(row: tuple[Any, ...]) -> Event:
    event = decode_event(bytes(row[1]))
    event.offset = int(row[0])
    return event


def _count_delete(con: duckdb.DuckDBPyConnection, table: str, where: str, params: list[Any]) -> int:
    row = con.execute(f"DELETE FROM {table} WHERE {where} RETURNING 1", params).fetchall()
    return len(row)


def _micros(t: datetime) -> int:
    return round(t.timestamp() * 1e6)


_encode_record = msgspec.json.Encoder().encode
# A session idle this long before the latest activity is over (sessions/IDLE_SECONDS).
IDLE_MICROS = 30 * 60 * 1_000_000


def _upsert_sessions(con: duckdb.DuckDBPyConnection, records: Sequence[SessionRecord]) -> None:
    latest = {r.session_id: r for r in records}  # a session's last record wins
    rows = [
        (
            r.session_id,
            r.user_key,
            r.user_id,
            r.anonymous_id,
            round(r.started * 1e6),
            round(r.ended * 1e6),
            r.events,
            r.closed,
            None if r.anomaly is None else r.anomaly.get("score"),
            None if r.anomaly is None else r.anomaly.get("label"),
            None if r.conversion is None else r.conversion.get("probability"),
            _encode_record(r).decode(),
        )
        for r in latest.values()
    ]
    types = [
        pa.string(), pa.string(), pa.string(), pa.string(), pa.int64(), pa.int64(),
        pa.int32(), pa.bool_(), pa.float64(), pa.string(), pa.float64(), pa.string(),
    ]  # fmt: skip
    columns = [
        "session_id", "user_key", "user_id", "anonymous_id", "started", "ended", "events",
        "closed", "anomaly_score", "anomaly_label", "conversion", "record",
    ]  # fmt: skip
    _bulk_upsert(con, "sessions", columns, rows, types)


def _insert_interactions(con: duckdb.DuckDBPyConnection, items: Sequence[Interaction]) -> None:
    """Append interactions; an event's again (a replay after a failed commit) is kept
    once."""
    positions: dict[str, int] = {}
    rows = []
    for i in items:
        position = positions.get(i.event_id, 0)
        positions[i.event_id] = position + 1
        rows.append((
            -1 if i.offset is None else i.offset, i.event_id, position, i.user_key,
            i.session_id, i.item_id, i.kind, round(i.timestamp * 1e6),
            msgspec.json.encode(i.properties).decode() if i.properties else None,
        ))  # fmt: skip
    columns = [
        "offset",
        "event_id",
        "position",
        "user_key",
        "session_id",
        "item_id",
        "kind",
        "ts",
        "properties",
    ]
    types = [
        pa.int64(), pa.string(), pa.int32(), pa.string(), pa.string(), pa.string(),
        pa.string(), pa.int64(), pa.string(),
    ]  # fmt: skip
    incoming_rows = pa.table(
        [pa.array([r[k] for r in rows], t) for k, t in enumerate(types)], names=columns
    )
    con.execute("INSERT OR IGNORE INTO interactions SELECT * FROM incoming_rows")
    del incoming_rows


def _bulk_upsert(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: list[str],
    rows: list[tuple[Any, ...]],
    types: list[pa.DataType],
) -> None:
    incoming_rows = pa.table(
        [pa.array([r[i] for r in rows], t) for i, t in enumerate(types)], names=columns
    )
    # A replacement scan finds the table by its local name: one DuckDB call, not three.
    con.execute(f"INSERT OR REPLACE INTO {table} SELECT * FROM incoming_rows")
    del incoming_rows
