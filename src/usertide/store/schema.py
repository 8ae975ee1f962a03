"""Schema versions for the SQL stores. Each step is applied once, in order, on start."""

from __future__ import annotations

# A list of steps; a store records how many it has applied. Never edit a released step:
# append a new one.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE events (
            "offset" BIGINT NOT NULL,
            id VARCHAR PRIMARY KEY,
            type VARCHAR NOT NULL,
            name VARCHAR,
            user_id VARCHAR,
            anonymous_id VARCHAR,
            session_id VARCHAR,
            page_path VARCHAR,
            country VARCHAR,
            ts TIMESTAMPTZ NOT NULL,
            received_at TIMESTAMPTZ NOT NULL,
            body BLOB NOT NULL
        )""",
        """CREATE TABLE failed_events (
            id VARCHAR PRIMARY KEY,
            reason VARCHAR NOT NULL,
            message VARCHAR NOT NULL,
            field VARCHAR,
            source VARCHAR NOT NULL,
            received_at TIMESTAMPTZ NOT NULL,
            raw VARCHAR NOT NULL,
            user_id VARCHAR,
            anonymous_id VARCHAR
        )""",
        "CREATE TABLE user_state (key VARCHAR PRIMARY KEY, state BLOB NOT NULL)",
        "CREATE TABLE profiles (key VARCHAR PRIMARY KEY, profile VARCHAR NOT NULL)",
        "CREATE TABLE aliases (anonymous_id VARCHAR PRIMARY KEY, user_id VARCHAR NOT NULL)",
        'CREATE TABLE checkpoints (consumer VARCHAR PRIMARY KEY, "offset" BIGINT NOT NULL)',
        "CREATE TABLE api_keys (key_id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, "
        "digest VARCHAR NOT NULL)",
    ],
]

MIGRATIONS.append(
    [
        """CREATE TABLE outbox (
            id VARCHAR PRIMARY KEY,
            status VARCHAR NOT NULL,
            next_attempt_at TIMESTAMPTZ,
            body BLOB NOT NULL
        )""",
    ]
)

MIGRATIONS.append(
    [
        """CREATE TABLE alerts (
            id VARCHAR PRIMARY KEY,
            user_id VARCHAR NOT NULL,
            status VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            body BLOB NOT NULL
        )""",
    ]
)

MIGRATIONS.append(
    [
        """CREATE TABLE models (
            name VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (name, version)
        )""",
    ]
)


# Queryable events: properties, traits and context as JSON text beside the binary body
# (which replays decode), so analytics run as SQL in the store. Stores fill these
# columns for events stored before this step (DuckDB: ``backfill_event_json``).
EVENT_JSON_STEP = len(MIGRATIONS)
MIGRATIONS.append(
    [
        "ALTER TABLE events ADD COLUMN properties VARCHAR",
        "ALTER TABLE events ADD COLUMN traits VARCHAR",
        "ALTER TABLE events ADD COLUMN context VARCHAR",
    ]
)

# Sessions as the engine last saw them (live ones are rewritten at every checkpoint,
# a closed one once more at its close), and what a model version was trained on.
MIGRATIONS.append(
    [
        """CREATE TABLE sessions (
            session_id VARCHAR PRIMARY KEY,
            user_key VARCHAR NOT NULL,
            user_id VARCHAR,
            anonymous_id VARCHAR,
            started BIGINT NOT NULL,
            ended BIGINT NOT NULL,
            events INTEGER NOT NULL,
            closed BOOLEAN NOT NULL,
            anomaly_score DOUBLE,
            anomaly_label VARCHAR,
            conversion DOUBLE,
            record VARCHAR NOT NULL
        )""",
        "ALTER TABLE models ADD COLUMN meta VARCHAR DEFAULT '{}'",
    ]
)

# Recommendations: the events about items in log order (what the global recommenders
# are rebuilt and trained from) and the item catalogue (``POST /v1/items``).
MIGRATIONS.append(
    [
        """CREATE TABLE interactions (
            "offset" BIGINT NOT NULL,
            event_id VARCHAR NOT NULL,
            position INTEGER NOT NULL,
            user_key VARCHAR NOT NULL,
            session_id VARCHAR NOT NULL,
            item_id VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            ts BIGINT NOT NULL,
            properties VARCHAR,
            PRIMARY KEY (event_id, position)
        )""",
        """CREATE TABLE items (
            item_id VARCHAR PRIMARY KEY,
            properties VARCHAR NOT NULL,
            available BOOLEAN NOT NULL,
            updated BIGINT NOT NULL
        )""",
    ]
)

CURRENT_VERSION = len(MIGRATIONS)
