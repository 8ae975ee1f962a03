"""The textbook baseline: a Flask collector writing each event to SQLite.

This is the design usertide replaces, written the way tutorials write it: Flask parses
the JSON, the write key is checked, then every event of the batch is inserted into a
SQLite file with one ``INSERT`` and one ``commit()`` per event, on a connection opened
per request. SQLite runs in its default rollback-journal mode with
``synchronous=FULL``, i.e. each commit is durable like usertide's group commit (which
fsyncs DuckDB's WAL once per group). No enrichment, no engine: it does strictly less
work per event than usertide.

Served by a production WSGI server when one is installed (gunicorn with threads, or
waitress), otherwise by Werkzeug's threaded server (Flask's own ``app.run``); the
benchmark reports which one.

    python -m benchmarks.baseline_flask --port 8001 --db /tmp/events.sqlite3
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sqlite3
import sys
from typing import Any

from flask import Flask, Response, g, jsonify, request

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT UNIQUE,
    type TEXT NOT NULL,
    event TEXT,
    user_id TEXT,
    anonymous_id TEXT,
    timestamp TEXT,
    context TEXT,
    properties TEXT,
    traits TEXT
)
"""
INSERT = (
    "INSERT OR IGNORE INTO events (message_id, type, event, user_id, anonymous_id, timestamp, "
    "context, properties, traits) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def create_app(db_path: str, write_key: str) -> Flask:
    app = Flask(__name__)
    with sqlite3.connect(db_path) as con:
        con.execute(SCHEMA)

    def get_db() -> sqlite3.Connection:
        if "db" not in g:
            g.db = sqlite3.connect(db_path, timeout=30)
        db: sqlite3.Connection = g.db
        return db

    @app.teardown_appcontext
    def close_db(exc: BaseException | None) -> None:
        db = g.pop("db", None)
        if db is not None:
            db.close()

    def authorized() -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user = base64.b64decode(header[6:]).decode().split(":", 1)[0]
        except ValueError:
            return False
        return user == write_key

    def store(event: dict[str, Any]) -> None:
        db = get_db()
        db.execute(
            INSERT,
            (
                event.get("messageId"),
                event.get("type"),
                event.get("event") or event.get("name"),
                event.get("userId"),
                event.get("anonymousId"),
                event.get("timestamp"),
                json.dumps(event.get("context", {})),
                json.dumps(event.get("properties", {})),
                json.dumps(event.get("traits", {})),
            ),
        )
        db.commit()

    @app.post("/v1/batch")
    def batch() -> tuple[Response, int] | Response:
        if not authorized():
            return jsonify(error="invalid write key"), 401
        body = request.get_json()
        events = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(events, list):
            return jsonify(error="'batch' must be an array"), 400
        for event in events:
            store(event)
        return jsonify(success=True)

    @app.post("/v1/track")
    def track() -> tuple[Response, int] | Response:
        if not authorized():
            return jsonify(error="invalid write key"), 401
        event = request.get_json()
        if not isinstance(event, dict):
            return jsonify(error="the body must be an object"), 400
        event.setdefault("type", "track")
        store(event)
        return jsonify(success=True)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    return app


def server_kind() -> str:
    """Which WSGI server :func:`main` will use."""
    try:
        import gunicorn  # noqa: F401

        return "gunicorn (1 worker, 16 threads)"
    except ImportError:
        pass
    try:
        import waitress  # noqa: F401

        return "waitress (16 threads)"
    except ImportError:
        return "werkzeug threaded (Flask's app.run)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args(argv)
    write_key = os.environ.get("BASELINE_WRITE_KEY", "utw_benchmark_write_key")
    app = create_app(args.db, write_key)
    kind = server_kind()
    print(f"baseline on port {args.port} under {kind}", flush=True)
    if kind.startswith("gunicorn"):
        from gunicorn.app.base import BaseApplication

        class _App(BaseApplication):  # type: ignore[misc]
            def load_config(self) -> None:
                self.cfg.set("bind", f"127.0.0.1:{args.port}")
                self.cfg.set("workers", 1)
                self.cfg.set("threads", 16)
                self.cfg.set("worker_class", "gthread")
                self.cfg.set("keepalive", 30)
                self.cfg.set("accesslog", None)

            def load(self) -> Flask:
                return app

        _App().run()
    elif kind.startswith("waitress"):
        import waitress

        waitress.serve(app, host="127.0.0.1", port=args.port, threads=16, _quiet=True)
    else:
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # HTTP/1.1 so the load generator's keep-alive connections are honoured.
        from werkzeug.serving import WSGIRequestHandler

        WSGIRequestHandler.protocol_version = "HTTP/1.1"
        app.run(host="127.0.0.1", port=args.port, threaded=True, use_reloader=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
