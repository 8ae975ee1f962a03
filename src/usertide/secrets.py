"""Secrets the service makes for itself (link signing, webhook signing), kept in the
data dir with owner-only permissions and never logged."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

FILE = "secrets.json"


def load_or_create(data_dir: Path, names: tuple[str, ...] = ("link", "webhook")) -> dict[str, str]:
    path = data_dir / FILE
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text())
    missing = [n for n in names if n not in stored]
    if missing:
        for name in missing:
            stored[name] = secrets.token_hex(32)
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(stored, f)
        os.replace(tmp, path)
    return stored
