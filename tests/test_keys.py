from __future__ import annotations

from pathlib import Path

from usertide.keys import VALID_CACHE, KeyRing, key_id
from usertide.store import DuckDBStore


def _ring(tmp_path: Path) -> KeyRing:
    store = DuckDBStore(tmp_path / "keys.duckdb")
    store.migrate()
    ring = KeyRing(store)
    ring.ensure("admin", "uta_admin")
    ring.ensure("write", "utw_write")
    return ring


def test_valid_keys_are_remembered_and_others_still_refused(tmp_path: Path) -> None:
    ring = _ring(tmp_path)
    for _ in range(3):  # the second and third answers come from the cache
        assert ring.check("write", "utw_write") == key_id("utw_write")
    assert ring.check("write", "utw_writ") is None
    assert ring.check("write", "utw_write ") is None
    assert ring.check("admin", "utw_write") is None  # a write key is no admin key
    assert ring.check("write", "uta_admin") is None
    assert ring.check("write", None) is None and ring.check("write", "") is None


def test_the_cache_is_bounded(tmp_path: Path) -> None:
    ring = _ring(tmp_path)
    for i in range(VALID_CACHE * 2):
        key = f"utw_extra{i}"
        ring.ensure("write", key)
        assert ring.check("write", key) == key_id(key)
        assert len(ring._valid) <= VALID_CACHE
    assert ring.check("write", "utw_write") == key_id("utw_write")


def test_temporary_keys_are_accepted_until_removed_and_never_stored(tmp_path: Path) -> None:
    ring = _ring(tmp_path)
    assert ring.add_temporary("write", "utw_runtime", "import") == "import"
    assert ring.check("write", "utw_runtime") == "import"
    assert ring.check("admin", "utw_runtime") is None
    ring.ensure("write", "utw_other")  # reloading the stored keys keeps it
    assert ring.check("write", "utw_runtime") == "import"
    assert "import" not in ring.store.keys("write")
    ring.remove_temporary("write", "utw_runtime")
    assert ring.check("write", "utw_runtime") is None  # not even from the cache
    assert ring.check("write", "utw_write") == key_id("utw_write")
