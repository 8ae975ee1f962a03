"""Every implementation of ``Store``: the conformance suite and the other store-level
tests (overview, user search, analytics) run over all of them through the ``factory``
and ``store`` fixtures in conftest.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from usertide.store import DuckDBStore, Store

StoreFactory = Callable[[], Store]


def _duckdb(tmp_path: Path) -> StoreFactory:
    return lambda: DuckDBStore(tmp_path / "store.duckdb")


IMPLEMENTATIONS: dict[str, Callable[[Path], StoreFactory]] = {"duckdb": _duckdb}
