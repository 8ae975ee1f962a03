"""The storage contract. One narrow interface, two implementations (DuckDB, PostgreSQL).

Every implementation must pass ``tests/store/test_conformance.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal

import msgspec

from usertide.alerts.model import Alert
from usertide.analytics.sql import Dialect
from usertide.events import Event, FailedEvent
from usertide.events.interaction import Interaction
from usertide.notify.model import Notification, NotificationStatus


class EventQuery(msgspec.Struct, kw_only=True, frozen=True):
    user_id: str | None = None
    # Anonymous ids known to belong to ``user_id`` beside those in the store's aliases
    # (the engine links them before its next checkpoint writes them down).
    linked_anonymous_ids: tuple[str, ...] = ()
    anonymous_id: str | None = None
    name: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_offset: int | None = None  # cursor for pagination (exclusive)
    limit: int = 100


TopColumn = Literal["name", "page_path", "country", "type"]


class Item(msgspec.Struct, kw_only=True):
    """An item of the catalogue: what ``POST /v1/items`` describes (or events taught)."""

    item_id: str
    properties: dict[str, Any] = msgspec.field(default_factory=dict)
    available: bool = True
    updated: float = 0.0  # epoch seconds


class SessionRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A session as the engine last saw it: what ``GET /v1/sessions`` shows and what
    session models are trained on. ``started``/``ended`` are epoch seconds."""

    session_id: str
    user_key: str
    user_id: str | None = None
    anonymous_id: str | None = None
    started: float
    ended: float
    events: int
    pages: int = 0
    closed: bool = False
    features: dict[str, float] = msgspec.field(default_factory=dict)
    anomaly: dict[str, Any] | None = None  # score, label, reasons, model_version
    conversion: dict[str, Any] | None = None  # probability, model_version


class SessionQuery(msgspec.Struct, kw_only=True, frozen=True):
    user_keys: tuple[str, ...] = ()  # any of them (a user and their anonymous ids)
    since: datetime | None = None  # sessions that ended at or after
    until: datetime | None = None  # sessions that started before
    min_score: float | None = None
    label: str | None = None
    order: str = "recent"  # recent (last activity first) | score (most anomalous first)
    after: tuple[float, str] | None = None  # the (sort value, session id) a page ended at
    limit: int = 100


class ModelInfo(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    version: int
    created_at: datetime
    meta: dict[str, Any] = msgspec.field(default_factory=dict)


class EngineCommit(msgspec.Struct, kw_only=True):
    """Everything the engine writes at a checkpoint, applied atomically.

    ``states`` maps a user key to its serialized state (``None`` deletes it);
    ``profiles`` maps a user key to its JSON-able profile; ``aliases`` maps an
    anonymous id to the identified user it was merged into.
    """

    consumer: str
    offset: int
    states: dict[str, bytes | None] = msgspec.field(default_factory=dict)
    profiles: dict[str, dict[str, Any] | None] = msgspec.field(default_factory=dict)
    aliases: dict[str, str] = msgspec.field(default_factory=dict)
    sessions: list[SessionRecord] = msgspec.field(default_factory=list)  # upserted by id
    # events about items, appended to ``interactions`` (the recommenders' history)
    interactions: list[Interaction] = msgspec.field(default_factory=list)


class EraseReport(msgspec.Struct, kw_only=True):
    user_id: str
    events: int
    failed_events: int
    states: int
    profiles: int
    aliases: int
    alerts: int = 0
    sessions: int = 0


class StoreLocked(Exception):
    """Another process has the store open (an embedded store has one writing process).

    ``pid`` and ``program`` name the holder when the backend says who it is.
    """

    def __init__(self, message: str, pid: int | None = None, program: str | None = None) -> None:
        super().__init__(message)
        self.pid = pid
        self.program = program


class Store(ABC):
    """Durable storage for the event log, failed events, engine state and keys."""

    # -- lifecycle ---------------------------------------------------------------
    @abstractmethod
    def migrate(self) -> int:
        """Bring the schema to the current version; returns that version."""

    @abstractmethod
    def close(self) -> None: ...

    # -- the event log -------------------------------------------------------------
    @abstractmethod
    def append_events(self, events: Sequence[Event]) -> list[Event]:
        """Durably append events not seen before (dedup by ``id``) in one commit, for
        callers without a log in front (tools, tests): like :meth:`load`, but the store
        assigns each appended event a monotonically increasing ``offset`` and returns
        the appended ones in offset order; duplicates (already stored, or repeated in
        the batch) are skipped. Returns only after the commit is durable.
        """

    @abstractmethod
    def load(
        self, events: Sequence[Event], failed: Sequence[FailedEvent], through: int | None
    ) -> list[Event]:
        """Take a stretch of the event log.

        ``events`` already carry their log offsets; those not seen before (dedup by
        ``id``) are stored and returned in offset order, duplicates are skipped. Failed
        events are kept (dedup by id). Unless ``through`` is ``None`` the log is
        recorded as loaded through that offset (:meth:`loaded_through`) in the same
        commit. Loading a stretch again is harmless (nothing is new the second time), so
        the loader records its position only now and then.
        """

    @abstractmethod
    def loaded_through(self) -> int:
        """The log offset the store holds everything up to (0 when nothing was loaded)."""

    @abstractmethod
    def read_log(self, after_offset: int, limit: int) -> list[Event]:
        """Events with offset > ``after_offset`` in offset order (the engine's replay)."""

    @abstractmethod
    def last_offset(self) -> int:
        """The highest offset in the log, 0 when empty."""

    @abstractmethod
    def query_events(self, query: EventQuery) -> list[Event]:
        """Filtered events in offset order, at most ``query.limit``."""

    @abstractmethod
    def count_events(self) -> int: ...

    # Analytics build their SQL in this dialect and run it with ``select``.
    dialect: ClassVar[Dialect]

    @abstractmethod
    def select(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only query (analytics) and return its rows."""

    @abstractmethod
    def top_values(self, column: TopColumn, limit: int = 10) -> list[tuple[str, int]]:
        """The most frequent values of an event column, with their counts."""

    # -- failed events ------------------------------------------------------------
    @abstractmethod
    def append_failed(self, failed: Sequence[FailedEvent]) -> None: ...

    @abstractmethod
    def query_failed(self, limit: int = 100, reason: str | None = None) -> list[FailedEvent]: ...

    @abstractmethod
    def count_failed(self) -> int: ...

    # -- engine state -------------------------------------------------------------
    @abstractmethod
    def commit_engine(self, commit: EngineCommit) -> None:
        """Apply states, profiles, aliases and the consumer offset in one transaction."""

    @abstractmethod
    def engine_offset(self, consumer: str) -> int:
        """The last offset committed by ``consumer``, 0 if none."""

    @abstractmethod
    def iter_states(self) -> Iterator[tuple[str, bytes]]: ...

    @abstractmethod
    def get_profile(self, key: str) -> dict[str, Any] | None: ...

    # -- sessions -------------------------------------------------------------------
    @abstractmethod
    def closed_conversions(self, limit: int) -> list[tuple[float, dict[str, Any]]]:
        """(ended, conversion) of the latest ``limit`` finished sessions that have one
        (closed, or idle 30 minutes before the latest activity), oldest first: what the
        conversion model is trained on."""

    @abstractmethod
    def sessions(self, query: SessionQuery) -> list[SessionRecord]:
        """Sessions by ``query.order``, ties by session id; at most ``query.limit``."""

    @abstractmethod
    def session_features(
        self, since: datetime | None, limit: int
    ) -> list[tuple[float, dict[str, float]]]:
        """(ended, features) of the latest ``limit`` sessions that ended at or after
        ``since``, oldest first: what session models are trained on."""

    @abstractmethod
    def aliases(self) -> dict[str, str]: ...

    # -- items and the events about them (recommendations) ---------------------------
    @abstractmethod
    def interactions(self, after_offset: int = -1, limit: int = 100_000) -> list[Interaction]:
        """Stored interactions of events with a log offset above ``after_offset``, in
        log order (an event's items in their order): what recommenders rebuild from."""

    @abstractmethod
    def items_put(self, items: Sequence[Item]) -> None:
        """Insert or replace catalogue items."""

    @abstractmethod
    def items_all(self) -> list[Item]:
        """The whole catalogue (the service holds it in memory)."""

    # -- the notification outbox ----------------------------------------------------
    @abstractmethod
    def outbox_add(self, items: Sequence[Notification]) -> int:
        """Store new notifications; ids already present are left as they are.
        Returns how many were new."""

    @abstractmethod
    def outbox_due(self, now: datetime, limit: int = 100) -> list[Notification]:
        """Pending notifications whose next attempt is due, oldest first."""

    @abstractmethod
    def outbox_save(self, item: Notification) -> None:
        """Record an attempt's outcome (status, attempts, next attempt, error)."""

    @abstractmethod
    def outbox_list(
        self, status: NotificationStatus | None = None, limit: int = 100
    ) -> list[Notification]: ...

    # -- alerts -------------------------------------------------------------------
    @abstractmethod
    def alerts_add(self, alerts: Sequence[Alert]) -> set[str]:
        """Store new alerts in one commit; returns the ids that were new (an alert
        whose id exists already is left unchanged)."""

    def alert_add(self, alert: Alert) -> bool:
        """Store a new alert; False (and nothing changed) if its id exists."""
        return alert.id in self.alerts_add([alert])

    @abstractmethod
    def alert_get(self, alert_id: str) -> Alert | None: ...

    @abstractmethod
    def alert_save(self, alert: Alert) -> None:
        """Update an existing alert (status, feedback)."""

    @abstractmethod
    def alerts(
        self,
        *,
        status: str | None = None,
        user_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        """Newest first."""

    # -- global model snapshots ----------------------------------------------------
    @abstractmethod
    def model_put(
        self, name: str, version: int, data: bytes, meta: dict[str, Any] | None = None
    ) -> None: ...

    @abstractmethod
    def model_versions(self, name: str | None = None) -> list[ModelInfo]:
        """Every stored version (of one model), by name then newest first."""

    @abstractmethod
    def model_latest(self, name: str) -> tuple[int, bytes] | None:
        """The highest version of a model and its bytes, if any was stored."""

    @abstractmethod
    def model_get(self, name: str, version: int) -> bytes | None:
        """One stored version of a model (replays activate the version of their time)."""

    # -- keys ---------------------------------------------------------------------
    @abstractmethod
    def put_key(self, key_id: str, kind: str, digest: str) -> None: ...

    @abstractmethod
    def keys(self, kind: str) -> dict[str, str]:
        """``{key_id: digest}`` for keys of ``kind`` ("admin" or "write")."""

    # -- privacy ------------------------------------------------------------------
    @abstractmethod
    def erase_user(self, user_id: str) -> EraseReport:
        """Delete every event, failed event, state, profile and alias of a user,
        including the anonymous ids that were merged into it."""

    # -- helpers shared by all implementations ---------------------------------------
    def read_log_iter(self, after_offset: int, batch: int = 10_000) -> Iterator[Event]:
        offset = after_offset
        while True:
            events = self.read_log(offset, batch)
            if not events:
                return
            yield from events
            last = events[-1].offset
            assert last is not None
            offset = last

    # -- overview -------------------------------------------------------------------
    # The dashboard's live overview. These count by arrival (``received_at``), not by
    # event time: "what is coming in now" stays right when a client's clock is off or
    # an import brings last year's events.
    @abstractmethod
    def received_per_minute(self, since: datetime, until: datetime) -> list[tuple[datetime, int]]:
        """Events received per minute in ``[since, until)``: ``(minute start, count)``,
        oldest first; minutes without events are left out."""

    @abstractmethod
    def active_users(self, since: datetime) -> int:
        """Distinct people with an event received since ``since``: an anonymous id
        merged into a user counts as that user."""

    @abstractmethod
    def top_received(
        self, column: TopColumn, since: datetime, limit: int = 10
    ) -> list[tuple[str, int]]:
        """Like :meth:`top_values`, over the events received since ``since``."""

    @abstractmethod
    def top_sources(self, since: datetime, limit: int = 10) -> list[tuple[str, int]]:
        """Where visitors come from, over the page views received since ``since``: the
        ``utm_source`` property, else the referrer's host when it is another site's,
        else ``(direct)``. Views referred by the same site (navigation) are left out."""

    @abstractmethod
    def failed_reasons(self, since: datetime | None = None) -> list[tuple[str, int]]:
        """Failed events by reason (received since ``since``), most frequent first."""

    # -- user search ----------------------------------------------------------------
    # Over the profiles the engine's checkpoints write (``EngineCommit.profiles``, the
    # engine's view of each user: ``profile.traits``, ``tags.tags``, ...): a search
    # finds users as of the last checkpoint.
    @abstractmethod
    def search_users(
        self,
        *,
        search: str | None = None,
        tag: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[tuple[str, dict[str, Any]]]:
        """Stored profiles as ``(key, profile)``, in key order, at most ``limit``, with
        keys after ``after`` (exclusive: the last key of the previous page).

        ``search`` matches, case-insensitively, a substring of the user id (the key;
        for visitors the anonymous id, without ``anon:``) or of any trait's value
        (``profile.traits``); ``tag`` is one of the profile's ``tags.tags`` (tags are
        lower case; the tag given is compared in lower case). Given both, both hold.
        """


def dedup_in_batch(events: Sequence[Event]) -> list[Event]:
    seen: set[str] = set()
    out: list[Event] = []
    for event in events:
        if event.id not in seen:
            seen.add(event.id)
            out.append(event)
    return out
