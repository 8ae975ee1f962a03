"""The model registry over HTTP: list versions, train now, activate (roll back).

``GET /v1/models`` lists every stored version of every global model with its training
window, features and metrics, and which version is in force. ``POST
/v1/models/{name}/train`` trains a new version now and activates it; ``POST
/v1/models/{name}/activate`` with ``{"version": N}`` puts a stored version in force (a
rollback is activating an older one). Activation goes through the log (a ``$model``
event), so the engine switches between two events and a replay switches at the same
place; the answer comes once the engine has switched. Admin key required.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from usertide.anomaly.session import MODEL_NAME as SESSION_MODEL
from usertide.anomaly.trainer import NotEnoughData
from usertide.engine.core import model_event
from usertide.propensity.model import MODEL_NAME as CONVERSION_MODEL
from usertide.propensity.model import NotEnoughConversions
from usertide.risk.trainer import MODEL_NAME as POPULATION_MODEL
from usertide.service import Service
from usertide.store.base import ModelInfo
from usertide.web.auth import require_admin
from usertide.web.errors import ApiError, json_response
from usertide.web.openapi import admin, errors, param, response
from usertide.web.params import json_object

MAX_BODY = 1024


def _in_force(service: Service) -> dict[str, int]:
    return service.runtime.read(lambda engine: dict(engine.models))


def _describe(info: ModelInfo, active: dict[str, int]) -> dict[str, Any]:
    meta = info.meta
    return {
        "name": info.name,
        "version": info.version,
        "kind": meta.get("kind"),
        "active": active.get(info.name) == info.version,
        "created_at": info.created_at.isoformat().replace("+00:00", "Z"),
        "trained_from": meta.get("trained_from"),
        "trained_to": meta.get("trained_to"),
        "features": meta.get("features", []),
        "rows": meta.get("rows"),
        "metrics": meta.get("metrics", {}),
    }


def _known(service: Service, name: str) -> None:
    if name not in service.runtime.engine.activate:
        known = ", ".join(sorted(service.runtime.engine.activate))
        raise ApiError(404, "not_found", f"no model named '{name}'; known: {known}")


async def list_models(request: Request) -> Response:
    service = require_admin(request)
    infos = await run_in_threadpool(service.registry.versions)
    active = _in_force(service)
    return json_response(
        {
            "models": [_describe(i, active) for i in infos],
            "active": active,
        }
    )


async def train_model(request: Request) -> Response:
    service = require_admin(request)
    name = request.path_params["name"]
    _known(service, name)
    await service.caught_up()  # train on everything acknowledged so far

    def train() -> int:
        if name == SESSION_MODEL:
            return service.session_trainer.train_once().version
        if name == POPULATION_MODEL:
            return service.trainer.train_once().version
        if name == CONVERSION_MODEL:
            return service.conversion_trainer.train_once().version
        raise ApiError(404, "not_found", f"'{name}' is not trained on demand")

    try:
        version = await run_in_threadpool(train)
    except (NotEnoughData, NotEnoughConversions) as exc:
        raise ApiError(409, "not_enough_data", str(exc)) from exc
    await _wait_active(service, name, version)
    return await _answer(service, name, version, 201)


async def activate_model(request: Request) -> Response:
    service = require_admin(request)
    name = request.path_params["name"]
    _known(service, name)
    version = (await json_object(request, MAX_BODY)).get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ApiError(400, "invalid_field", "'version' must be a stored version number (≥ 1)")
    exists = await run_in_threadpool(service.registry.exists, name, version)
    if not exists:
        raise ApiError(404, "not_found", f"'{name}' has no stored version {version}")
    offset = await service.committer.append([model_event(name, version, datetime.now(UTC))])
    await _wait_active(service, name, version, offset)
    return await _answer(service, name, version, 200)


async def _wait_active(
    service: Service, name: str, version: int, offset: int | None = None
) -> None:
    offset = service.committer.last_offset if offset is None else offset
    await run_in_threadpool(service.runtime.wait_for, offset)
    if _in_force(service).get(name) != version:
        raise ApiError(503, "unavailable", f"the engine has not switched to {name} v{version}")


async def _answer(service: Service, name: str, version: int, status: int) -> Response:
    infos = await run_in_threadpool(service.registry.versions, name)
    info = next(i for i in infos if i.version == version)
    return json_response(_describe(info, _in_force(service)), status)


def routes() -> list[Route]:
    return [
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{name}/train", train_model, methods=["POST"]),
        Route("/v1/models/{name}/activate", activate_model, methods=["POST"]),
    ]


_MODEL = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "integer"},
        "kind": {"type": ["string", "null"]},
        "active": {"type": "boolean"},
        "created_at": {"type": "string", "format": "date-time"},
        "trained_from": {"type": ["string", "null"]},
        "trained_to": {"type": ["string", "null"]},
        "features": {"type": "array", "items": {"type": "string"}},
        "rows": {"type": ["integer", "null"]},
        "metrics": {"type": "object"},
    },
}
_NAME = param("name", "path")
OPENAPI: dict[str, dict[str, Any]] = {
    "/v1/models": {
        "get": admin(
            {
                "summary": "Every stored model version, and the versions in force",
                "tags": ["models"],
                "responses": {
                    "200": response(
                        "The registry",
                        {
                            "type": "object",
                            "properties": {
                                "models": {"type": "array", "items": _MODEL},
                                "active": {"type": "object"},
                            },
                        },
                    )
                },
            }
        )
    },
    "/v1/models/{name}/train": {
        "post": admin(
            {
                "summary": "Train a new version now and put it in force",
                "tags": ["models"],
                "parameters": [_NAME],
                "responses": {
                    "201": response("The new version", _MODEL),
                    **errors(404),
                    "409": response("Not enough stored data to train on"),
                },
            }
        )
    },
    "/v1/models/{name}/activate": {
        "post": admin(
            {
                "summary": "Put a stored version in force (roll back or forward)",
                "tags": ["models"],
                "parameters": [_NAME],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["version"],
                                "properties": {"version": {"type": "integer", "minimum": 1}},
                            }
                        }
                    },
                },
                "responses": {
                    "200": response("The version now in force", _MODEL),
                    **errors(400, 404, 413),
                },
            }
        )
    },
}
