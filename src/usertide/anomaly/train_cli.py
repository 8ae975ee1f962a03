"""``usertide train [--model NAME]``: train a new version of a global model now.

With a server running on the data dir (found by its runtime file) the server trains:
``POST /v1/models/{name}/train`` with the admin key (``--admin-key`` or
``$USERTIDE_ADMIN_KEY``), so the version is announced in its log and the running engine
switches to it. Without one, the service is started on the data dir without HTTP, the
engine catches up with the log, the model is trained and announced the same way, and
the service stops: the next ``usertide serve`` starts with it in force.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx

from usertide import runtime_file
from usertide.anomaly.trainer import NotEnoughData
from usertide.config import Settings, load_settings
from usertide.store.base import StoreLocked

TIMEOUT = 600.0


def run_train(model: str, *, data_dir: Path | None, admin_key: str | None) -> int:
    settings = load_settings(data_dir=data_dir)
    server = runtime_file.live_server(settings.data_dir)
    if server is not None:
        key = admin_key or os.environ.get("USERTIDE_ADMIN_KEY")
        if not key:
            return _fail(
                f"the server at {server.url} holds the store: pass its admin key with "
                "--admin-key or USERTIDE_ADMIN_KEY"
            )
        try:
            r = httpx.post(
                f"{server.url}/v1/models/{model}/train",
                headers={"Authorization": f"Bearer {key}"},
                timeout=TIMEOUT,
            )
        except httpx.HTTPError as exc:
            return _fail(f"could not reach the server at {server.url}: {exc}")
        if r.status_code != 201:
            message = r.json().get("error", {}).get("message", r.text) if r.content else ""
            return _fail(f"the server answered {r.status_code}: {message}")
        _report(r.json())
        return 0
    if not settings.db_path.is_file():
        return _fail(f"no store in {settings.data_dir}: nothing to train on")
    return _train_offline(model, settings)


def _train_offline(model: str, settings: Settings) -> int:
    from usertide.service import Service  # the whole service: only when training here

    try:
        service = Service.create(settings)
    except StoreLocked as exc:
        return _fail(str(exc))
    service.start()
    try:
        service.loader.wait_for(service.committer.last_offset, TIMEOUT)
        service.runtime.wait_for(service.committer.last_offset, TIMEOUT)
        try:
            if model == "population":
                version = service.trainer.train_once().version
                rows = None
            else:
                trained = service.session_trainer.train_once()
                version, rows = trained.version, trained.card.rows
        except NotEnoughData as exc:
            return _fail(str(exc))
        service.runtime.wait_for(service.committer.last_offset, TIMEOUT)
        info = next(i for i in service.registry.versions(model) if i.version == version)
        _report(
            {
                "name": model,
                "version": version,
                "rows": rows if rows is not None else info.meta.get("rows"),
                "trained_from": info.meta.get("trained_from"),
                "trained_to": info.meta.get("trained_to"),
                "active": service.runtime.read(lambda e: e.models.get(model)) == version,
            }
        )
    finally:
        service.stop()
    return 0


def _report(model: dict[str, object]) -> None:
    window = ""
    if model.get("trained_from"):
        window = f", sessions from {model['trained_from']} to {model['trained_to']}"
    rows = f" on {model['rows']:,} rows" if isinstance(model.get("rows"), int) else ""
    state = "in force" if model.get("active") else "stored (not in force)"
    print(f"{model['name']} v{model['version']} trained{rows}{window}: {state}")


def _fail(message: str) -> int:
    print(f"usertide train: {message}", file=sys.stderr)
    return 1
