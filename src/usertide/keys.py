"""API keys: admin keys guard everything but ingestion; write keys identify a source.

Keys are stored as SHA-256 digests only. A key given in the environment is registered
on start; otherwise one of each kind is generated on first start and shown once. A
temporary key (the serving process's import token, see ``runtime_file``) is held in
memory only, for as long as the process runs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

from usertide.store.base import Store

KeyKind = Literal["admin", "write"]
_PREFIX: dict[KeyKind, str] = {"admin": "uta_", "write": "utw_"}
VALID_CACHE = 64
# The key id of the serving process's import token (``runtime_file``): the collector
# gives the events it brings ``source="import"`` and no client address of their own.
IMPORT_KEY_ID = "import"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id(key: str) -> str:
    """A short, non-secret name for a key (for metrics, logs and rate limits)."""
    return digest(key)[:12]


def generate(kind: KeyKind) -> str:
    return _PREFIX[kind] + secrets.token_urlsafe(24)


class KeyRing:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._digests: dict[KeyKind, dict[str, str]] = {"admin": {}, "write": {}}
        self._temporary: dict[KeyKind, dict[str, str]] = {"admin": {}, "write": {}}
        # Keys recently found valid, so a busy collector hashes each key once rather
        # than once per request; bounded, and emptied whenever the keys change.
        self._valid: dict[tuple[KeyKind, str], str] = {}

    def ensure(self, kind: KeyKind, configured: str | None) -> str | None:
        """Register the configured key, or generate one if there is none of this kind.

        Returns a newly generated key (to be shown once), else ``None``.
        """
        created: str | None = None
        if configured:
            self.store.put_key(key_id(configured), kind, digest(configured))
        elif not self.store.keys(kind):
            created = generate(kind)
            self.store.put_key(key_id(created), kind, digest(created))
        self._digests[kind] = self.store.keys(kind)
        self._valid.clear()
        return created

    def add_temporary(self, kind: KeyKind, key: str, kid: str | None = None) -> str:
        """Accept ``key`` as a key of ``kind`` (named ``kid``, by default its key id) until
        :meth:`remove_temporary`. It is held in memory only, never stored."""
        kid = kid or key_id(key)
        # Replaced, not changed in place, so a check() iterating the old dict is unaffected.
        self._temporary[kind] = {**self._temporary[kind], kid: digest(key)}
        self._valid.clear()
        return kid

    def remove_temporary(self, kind: KeyKind, key: str) -> None:
        gone = digest(key)
        self._temporary[kind] = {
            kid: stored for kid, stored in self._temporary[kind].items() if stored != gone
        }
        self._valid.clear()

    def check(self, kind: KeyKind, key: str | None) -> str | None:
        """The key's id if ``key`` is a valid key of ``kind``, else ``None``."""
        if not key:
            return None
        known = self._valid.get((kind, key))
        if known is not None:
            return known
        candidate = digest(key)
        for kid, stored in (*self._digests[kind].items(), *self._temporary[kind].items()):
            if hmac.compare_digest(candidate, stored):
                if len(self._valid) >= VALID_CACHE:
                    self._valid.clear()
                self._valid[(kind, key)] = kid
                return kid
        return None
