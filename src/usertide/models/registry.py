"""Versions of the global models (session anomaly, sign-in population, ...) in the store.

A version is bytes in a safe format (numbers and JSON, never pickle: a stored model is
data) and ``meta``: its kind, feature list, training window and metrics. Versions
number from 1 per model and are never rewritten; which one is in force is decided by
the ``$model`` events in the log (``engine/core.py``), so a rollback is activating an
older version, and a replay scores with the versions that scored the first time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from usertide.store.base import ModelInfo, Store


@dataclass(frozen=True)
class StoredModel:
    info: ModelInfo
    data: bytes


class ModelRegistry:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()  # two trainers never take the same version

    def put(self, name: str, data: bytes, meta: dict[str, Any], version: int | None = None) -> int:
        """Store a new version of ``name`` (the next number, or ``version`` for a model
        that is numbered with another, as a companion); returns its number."""
        with self._lock:
            if version is None:
                latest = self.store.model_latest(name)
                version = (latest[0] if latest else 0) + 1
            self.store.model_put(name, version, data, meta)
        return version

    def get(self, name: str, version: int) -> StoredModel | None:
        data = self.store.model_get(name, version)
        if data is None:
            return None
        info = next((i for i in self.store.model_versions(name) if i.version == version), None)
        return StoredModel(info, data) if info is not None else None

    def versions(self, name: str | None = None) -> list[ModelInfo]:
        return self.store.model_versions(name)

    def exists(self, name: str, version: int) -> bool:
        return any(i.version == version for i in self.store.model_versions(name))
