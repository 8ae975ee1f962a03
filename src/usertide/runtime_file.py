"""``DATA_DIR/server.json``: how other processes reach the service running on a data dir.

A serving process holds the store's lock, so ``usertide import`` cannot open the store
while it runs; instead it sends the file's records through the service. The runtime file
says where (the URL) and how (a random write token the key ring accepts only for the life
of that process; never stored in the database, never logged or printed).

The file is written atomically with owner-only permissions (0600). Anyone who can read the
data dir can read every event in it anyway (the DuckDB file, the log segments), so a token
that lets them add events there gives away nothing new.

The pid, with the process's start time (so a reused pid is not taken for the server), and
an answer from ``GET /healthz`` tell a live server from a file a crash left behind.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import socket
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil

FILE = "server.json"
# Plenty for a local /healthz; a server that takes longer is not one to import through.
PROBE_TIMEOUT = 3.0


@dataclass(frozen=True)
class RuntimeInfo:
    pid: int
    started: float  # the process's start time (psutil), which a reused pid does not share
    url: str  # http://host:port, a loopback address when the server listens on all
    token: str  # accepted as a write key while this process runs
    max_batch_bytes: int
    max_event_bytes: int


def new_token() -> str:
    return "utw_" + secrets.token_urlsafe(32)


def authorization(token: str) -> str:
    """The Authorization header that sends ``token`` as a write key (Basic username)."""
    return "Basic " + base64.b64encode(f"{token}:".encode()).decode()


def process_started(pid: int | None = None) -> float:
    """The start time of process ``pid`` (this one by default)."""
    return float(psutil.Process(pid).create_time())


def _running(pid: int, started: float) -> bool:
    """Whether the process that wrote the file still runs (not just its pid)."""
    try:
        # create_time is read from the same clock each time; allow for rounding only.
        return abs(process_started(pid) - started) <= 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # not ours to inspect; /healthz must still answer
        return True


def url_for(address: tuple[str, int] | tuple[str, int, int, int]) -> str:
    """``http://host:port`` for a listening socket's address; the wildcard addresses
    (0.0.0.0, ::) are reached through loopback."""
    host, port = address[0], address[1]
    if host in ("", "0.0.0.0"):  # noqa: S104 - mapping the wildcard, not binding to it
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def socket_url(sock: socket.socket) -> str:
    address: tuple[str, int] | tuple[str, int, int, int] = sock.getsockname()
    return url_for(address)


def write(data_dir: Path, info: RuntimeInfo) -> Path:
    """Write the runtime file atomically, readable by its owner only."""
    path = data_dir / FILE
    # mkstemp creates the file with mode 0600 under a name no other process uses.
    fd, tmp = tempfile.mkstemp(prefix=".server-", suffix=".tmp", dir=data_dir)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(info), out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def read(data_dir: Path) -> RuntimeInfo | None:
    """The runtime file's contents, or ``None`` if there is none (or it cannot be read)."""
    try:
        raw = json.loads((data_dir / FILE).read_text())
        return RuntimeInfo(
            pid=int(raw["pid"]),
            started=float(raw["started"]),
            url=str(raw["url"]),
            token=str(raw["token"]),
            max_batch_bytes=int(raw["max_batch_bytes"]),
            max_event_bytes=int(raw["max_event_bytes"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove(data_dir: Path, token: str) -> None:
    """Remove the runtime file if it is still the one written with ``token``."""
    info = read(data_dir)
    if info is not None and info.token == token:
        with contextlib.suppress(FileNotFoundError):
            (data_dir / FILE).unlink()


def live_server(data_dir: Path) -> RuntimeInfo | None:
    """The server running on ``data_dir``, or ``None`` if its runtime file is missing,
    unreadable or stale (the process is gone, or nothing answers at its URL)."""
    info = read(data_dir)
    if info is None:
        return None
    if not _running(info.pid, info.started):
        return None
    try:
        # trust_env=False: never through a proxy from the environment (nor to one).
        answer = httpx.get(f"{info.url}/healthz", timeout=PROBE_TIMEOUT, trust_env=False)
        body = answer.json()
    except (httpx.HTTPError, ValueError):
        return None
    # 503 is a degraded server: still the one holding the store, and it may recover.
    if answer.status_code in (200, 503) and isinstance(body, dict) and "status" in body:
        return info
    return None
