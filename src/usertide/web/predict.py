"""Predictions from the session model in force.

- ``POST /predict_behavior``: the original design's endpoint, unchanged for its users:
  ``{"clicks_per_minute": 18, "pages_per_session": 5}`` → ``{"behavior_prediction":
  "Normal"}`` or ``"Anomaly"``.
- ``POST /v1/predict/behavior``: any subset of the session features (``FEATURES``) →
  score, label, reasons and model version. A missing feature stands at the median of
  the sessions the model was trained on (and is listed in ``imputed``).

Both take the write key (HTTP Basic username, as ingestion) or the admin key (Bearer),
and are on the fast path (``fastpath.py``): no framework, no store, one compiled-forest
walk (microseconds).
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from usertide.anomaly.session import BASIC_FEATURES, MODEL_NAME, SessionModel
from usertide.engine.identity import ANON_PREFIX
from usertide.processors.features import FEATURES, BehaviourFeatures
from usertide.propensity.tracker import ConversionTracker, inputs_of
from usertide.propensity.tracker import inputs as conversion_inputs
from usertide.service import Service
from usertide.web.auth import basic_username, require_admin
from usertide.web.errors import ApiError, json_response
from usertide.web.openapi import errors, response
from usertide.web.params import json_object

PATHS = ("/predict_behavior", "/v1/predict/behavior")
MAX_BODY = 16_384
_encode = msgspec.json.Encoder().encode
_NORMAL = _encode({"behavior_prediction": "Normal"})
_ANOMALY = _encode({"behavior_prediction": "Anomaly"})
_KNOWN = frozenset(FEATURES)
_BASIC = frozenset(BASIC_FEATURES)


def _authorize(request: Request) -> Service:
    service: Service = request.app.state.service
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and credential:
        key = credential.strip()
        if service.keys.check("admin", key) or service.keys.check("write", key):
            return service
    elif scheme == "basic" and credential:
        user = basic_username(header)
        if user and service.keys.check("write", user):
            return service
    raise ApiError(
        401, "unauthorized", "a write key (HTTP Basic user) or the admin key (Bearer) is required"
    )


def _model(service: Service) -> SessionModel:
    model = service.session_trainer.models.current
    if model is None:
        raise ApiError(
            503,
            "model_unavailable",
            f"no {MODEL_NAME} model is in force yet: it trains from stored sessions on its "
            f"schedule, or now with POST /v1/models/{MODEL_NAME}/train",
        )
    return model


async def _features(request: Request, strict: bool) -> dict[str, float]:
    given = await json_object(request, MAX_BODY)
    values: dict[str, float] = {}
    for name, value in given.items():
        if name not in _KNOWN:
            if strict:
                raise ApiError(
                    400,
                    "unknown_feature",
                    f"'{name}' is not a session feature; known: {', '.join(FEATURES)}",
                )
            continue
        if value is None:
            continue  # as if missing
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ApiError(400, "invalid_field", f"'{name}' must be a number")
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise ApiError(400, "invalid_field", f"'{name}' must be a finite number ≥ 0")
        values[name] = number
    return values


async def predict_behavior(request: Request) -> Response:
    service = _authorize(request)
    given = await _features(request, strict=False)
    model = _model(service)
    if model.basic is not None and given.keys() <= _BASIC:
        basic, card = model.basic  # the original design's question, asked of its features
        anomalous = basic.score(card.fill(given)) >= card.medium
    else:
        anomalous = model.score(model.card.fill(given)) >= model.card.medium
    body = _ANOMALY if anomalous else _NORMAL
    return Response(body, media_type="application/json")


async def predict_behavior_v1(request: Request) -> Response:
    service = _authorize(request)
    given = await _features(request, strict=True)
    model = _model(service)
    x = model.card.fill(given)
    score = model.score(x)
    label = model.card.label(score)
    reasons = model.reasons(x, score) if label == "Anomaly" else model.card.reasons(x)
    return json_response(
        {
            "score": score,
            "label": label,
            "level": model.card.level(score),
            "reasons": [{"code": r.code, "message": r.message} for r in reasons],
            "model_version": model.version,
            "model": MODEL_NAME,
            "thresholds": {"anomaly": model.card.medium, "high": model.card.high},
            "imputed": [n for n in FEATURES if n not in given],
        }
    )


async def predict_conversion(request: Request) -> Response:
    """A user's or visitor's current session (from the engine), or given inputs."""
    service = require_admin(request)
    given = await json_object(request, MAX_BODY)
    model = service.conversion_trainer.models.current
    if model is None:
        raise ApiError(
            503,
            "model_unavailable",
            "no conversion model is in force yet: it trains from closed sessions on its "
            "schedule, or now with POST /v1/models/conversion/train",
        )
    converted: bool | None = None
    if "features" in given:
        features = given["features"]
        if not isinstance(features, dict):
            raise ApiError(400, "invalid_field", "'features' must be an object")
        x = _conversion_inputs(features, given)
    else:
        key = _user_key(given)
        found = service.runtime.read(lambda engine: _live_inputs(engine, key))
        if found is None:
            raise ApiError(404, "not_found", "no session of that user or visitor is known")
        x, converted = found
    (probability,) = model.probabilities([x])
    return json_response(
        {
            "probability": probability,
            "model_version": model.version,
            "model": "conversion",
            "goal": service.conversion_goal(),
            "converted_this_session": converted,
        }
    )


def _user_key(given: dict[str, Any]) -> str:
    user_id, anonymous_id = given.get("user_id"), given.get("anonymous_id")
    if isinstance(user_id, str) and user_id:
        return user_id
    if isinstance(anonymous_id, str) and anonymous_id:
        return ANON_PREFIX + anonymous_id
    raise ApiError(
        400, "invalid_field", "give 'user_id', 'anonymous_id' or 'features' (session features)"
    )


def _live_inputs(engine: Any, key: str) -> tuple[list[float], bool] | None:
    resolved = engine.identity.aliases.get(key.removeprefix(ANON_PREFIX), key)
    state = engine.lookup(resolved) or engine.lookup(key)
    if state is None or ConversionTracker.name not in state.slots:
        return None
    slot = state.slots[ConversionTracker.name]
    return conversion_inputs(state.get(BehaviourFeatures), slot), bool(slot.converted)


def _conversion_inputs(features: dict[str, Any], given: dict[str, Any]) -> list[float]:
    values: dict[str, float] = {}
    for name in FEATURES:
        value = features.get(name, 0.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ApiError(400, "invalid_field", f"'features.{name}' must be a number ≥ 0")
        values[name] = float(value)
    unknown = set(features) - _KNOWN
    if unknown:
        raise ApiError(400, "unknown_feature", f"'{sorted(unknown)[0]}' is not a session feature")
    history = {}
    for name in ("sessions_before", "conversions_before"):
        value = given.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ApiError(400, "invalid_field", f"'{name}' must be a whole number ≥ 0")
        history[name] = value
    x = inputs_of(values, history)
    assert x is not None
    return x


HANDLERS = {"/predict_behavior": predict_behavior, "/v1/predict/behavior": predict_behavior_v1}
ROUTES = {**HANDLERS, "/v1/predict/conversion": predict_conversion}


def routes() -> list[Any]:
    from starlette.routing import Route

    return [Route(path, handler, methods=["POST"]) for path, handler in ROUTES.items()]


_FEATURE_PROPS = {name: {"type": "number", "minimum": 0} for name in FEATURES}
_SECURITY: list[dict[str, list[str]]] = [{"writeKeyBasic": []}, {"adminKey": []}]
OPENAPI: dict[str, dict[str, Any]] = {
    "/predict_behavior": {
        "post": {
            "summary": "The original design's bot check: Normal or Anomaly",
            "description": (
                "Given only the original endpoint's two features, they are scored by the "
                "companion model that each version fits on those two alone; given more "
                "session features, by the full session model in force (missing ones at "
                "the training median). Anomaly: above the model's threshold, the top 1 % "
                "of its training sessions. 503 until a model is trained."
            ),
            "tags": ["predictions"],
            "security": _SECURITY,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": _FEATURE_PROPS,
                            "example": {"clicks_per_minute": 18, "pages_per_session": 5},
                        }
                    }
                },
            },
            "responses": {
                "200": response(
                    "The label",
                    {
                        "type": "object",
                        "properties": {"behavior_prediction": {"enum": ["Normal", "Anomaly"]}},
                    },
                ),
                **errors(400, 401, 413, 503),
            },
        }
    },
    "/v1/predict/conversion": {
        "post": {
            "summary": "The probability that a session reaches the conversion goal",
            "description": (
                "For a user's or visitor's current session (user_id or anonymous_id, from "
                "the engine), or for given session features (features, with "
                "sessions_before and conversions_before). The goal and its horizon (the "
                "session) are the service's (USERTIDE_CONVERSION_GOAL). 503 until a model "
                "is trained."
            ),
            "tags": ["predictions"],
            "security": [{"adminKey": []}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "user_id": {"type": "string"},
                                "anonymous_id": {"type": "string"},
                                "features": {"type": "object", "properties": _FEATURE_PROPS},
                                "sessions_before": {"type": "integer", "minimum": 0},
                                "conversions_before": {"type": "integer", "minimum": 0},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": response(
                    "The probability",
                    {
                        "type": "object",
                        "properties": {
                            "probability": {"type": "number"},
                            "model_version": {"type": "integer"},
                            "goal": {"type": "object"},
                            "converted_this_session": {"type": ["boolean", "null"]},
                        },
                    },
                ),
                **errors(400, 401, 404, 413, 503),
            },
        }
    },
    "/v1/predict/behavior": {
        "post": {
            "summary": "Score session features: score, label, reasons, model version",
            "description": (
                "Any subset of the session features; unknown names and non-numbers are a "
                "400 naming the field. Higher scores are more anomalous; the label is "
                "Anomaly above the model's threshold (the top 1 % of its training "
                "sessions)."
            ),
            "tags": ["predictions"],
            "security": _SECURITY,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": _FEATURE_PROPS,
                            "additionalProperties": False,
                        }
                    }
                },
            },
            "responses": {
                "200": response(
                    "The score",
                    {
                        "type": "object",
                        "properties": {
                            "score": {"type": "number"},
                            "label": {"enum": ["Normal", "Anomaly"]},
                            "level": {"enum": ["medium", "high", None]},
                            "reasons": {"type": "array"},
                            "model_version": {"type": "integer"},
                            "imputed": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                ),
                **errors(400, 401, 413, 503),
            },
        }
    },
}
