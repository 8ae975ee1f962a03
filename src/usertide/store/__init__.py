"""Storage behind one narrow interface: DuckDB (embedded) and, for scale-out, PostgreSQL."""

from usertide.store.base import EngineCommit, EraseReport, EventQuery, Store, StoreLocked
from usertide.store.duckdb import DuckDBStore

__all__ = ["DuckDBStore", "EngineCommit", "EraseReport", "EventQuery", "Store", "StoreLocked"]
