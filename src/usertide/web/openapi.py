"""The OpenAPI 3.1 description of the HTTP interface, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from usertide import __version__

_ERROR = {"$ref": "#/components/schemas/Error"}


def response(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"description": description}
    body["content"] = {"application/json": {"schema": schema or {"type": "object"}}}
    return body


def errors(*codes: int) -> dict[str, Any]:
    names = {
        400: "Invalid input",
        401: "Missing or unknown key",
        403: "Not allowed with this key",
        404: "Not found",
        413: "Too large",
        415: "Unsupported content type",
        429: "Rate limited",
        503: "Unavailable",
    }
    return {str(c): response(names[c], _ERROR) for c in codes}


_SEGMENT_ITEM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {
            "type": "string",
            "enum": ["track", "page", "screen", "identify", "alias", "group"],
        },
        "messageId": {"type": "string"},
        "userId": {"type": ["string", "null"]},
        "anonymousId": {"type": ["string", "null"]},
        "event": {"type": "string"},
        "name": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "originalTimestamp": {"type": "string", "format": "date-time"},
        "sentAt": {"type": "string", "format": "date-time"},
        "properties": {"type": "object"},
        "traits": {"type": "object"},
        "context": {"type": "object"},
        "previousId": {"type": "string"},
        "groupId": {"type": "string"},
        "writeKey": {"type": "string"},
    },
}

_INGEST_RESPONSES = {
    "200": response("Stored durably", {"type": "object"}),
    **errors(400, 401, 413, 415, 429, 503),
}


_PACKING = (
    " Bodies may be JSON sent as application/json or text/plain, gzip (found by its bytes,"
    " by Content-Encoding or by ?compression=gzip-js), base64 (?compression=base64), or"
    " form-encoded data=<JSON or base64> as browsers' sendBeacon sends them."
)


def _ingest(summary: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "description": summary + "." + _PACKING,
            "tags": ["ingest"],
            "security": [{"writeKeyBasic": []}, {}],
            "parameters": [
                param("compression", schema={"enum": ["gzip", "gzip-js", "base64"]}),
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": schema},
                    "text/plain": {"schema": {"type": "string"}},
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "required": ["data"],
                            "properties": {
                                "data": {"type": "string"},
                                "compression": {"type": "string"},
                            },
                        }
                    },
                },
            },
            "responses": _INGEST_RESPONSES,
        }
    }


def _get(summary: str, tag: str, *params: str, body: str = "application/json") -> dict[str, Any]:
    return {
        "summary": summary,
        "tags": [tag],
        "security": [{}],
        "parameters": [param(name, "path") for name in params],
        "responses": {"200": {"description": summary, "content": {body: {}}}},
    }


def param(name: str, where: str = "query", schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A parameter: path parameters are required strings, query parameters optional."""
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema or {"type": "string"},
    }


def admin(op: dict[str, Any]) -> dict[str, Any]:
    op.setdefault("security", [{"adminKey": []}])
    op["responses"] = {**op["responses"], **errors(401)}
    return op


def build_openapi(*extra: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The whole document; ``extra``: the paths a module describes itself (its
    ``OPENAPI`` mapping of path to operations), for modules added after this file."""
    segment_batch = {
        "type": "object",
        "required": ["batch"],
        "properties": {
            "batch": {"type": "array", "items": _SEGMENT_ITEM},
            "sentAt": {"type": "string", "format": "date-time"},
            "context": {"type": "object"},
            "writeKey": {"type": "string"},
        },
    }
    posthog_event = {
        "type": "object",
        "properties": {
            "event": {"type": "string"},
            "distinct_id": {"type": "string"},
            "properties": {"type": "object"},
            "uuid": {"type": "string"},
            "timestamp": {"type": "string"},
            "api_key": {"type": "string"},
            "token": {"type": "string"},
        },
    }
    posthog_body = {
        "oneOf": [
            posthog_event,
            {"type": "array", "items": posthog_event},
            {
                "type": "object",
                "required": ["batch"],
                "properties": {
                    "api_key": {"type": "string"},
                    "batch": {"type": "array", "items": posthog_event},
                    "sent_at": {"type": "string"},
                },
            },
        ]
    }
    user_param = param("user_id", "path")
    flat_event = {
        "type": "object",
        "required": ["event"],
        "properties": {
            "user_id": {"type": "string"},
            "anonymous_id": {"type": "string"},
            "event": {"type": "string"},
            "timestamp": {"type": "string", "format": "date-time"},
            "url": {"type": "string"},
            "properties": {"type": "object"},
            "writeKey": {"type": "string"},
        },
        "additionalProperties": True,
    }
    flat_body = {"oneOf": [flat_event, {"type": "array", "items": flat_event}]}
    single = ("track", "page", "screen", "identify", "alias", "group")
    ingest_paths: dict[str, Any] = {
        "/v1/batch": _ingest("Segment batch (≤ 500 KB, ≤ 32 KB per event)", segment_batch),
        "/v1/import": _ingest("Segment import (a batch)", segment_batch),
        "/v1/b": _ingest("Segment batch (analytics.js batching delivery)", segment_batch),
        **{f"/v1/{k}": _ingest(f"Segment {k}", _SEGMENT_ITEM) for k in single},
        **{f"/v1/{k[0]}": _ingest(f"Segment {k} (analytics.js)", _SEGMENT_ITEM) for k in single},
        **{
            path: _ingest(f"PostHog capture ({path})", posthog_body)
            for base in ("/batch", "/capture", "/e", "/i/v0/e")
            for path in (base, base + "/")
        },
        "/submit": _ingest(
            'Flat JSON events of the original design; answers {"status": "success"}',
            flat_body,
        ),
    }
    flags = {
        "summary": "PostHog feature flags: none (an empty configuration, so capture goes on)",
        "tags": ["sdk"],
        "security": [{}],
        "responses": {"200": response("No flags")},
    }
    sdk_paths: dict[str, Any] = {
        **{
            path: {"get": flags, "post": flags}
            for path in ("/flags", "/flags/", "/decide", "/decide/")
        },
        "/array/{token}/config": {
            "get": _get("posthog-js remote config: every server feature off", "sdk", "token")
        },
        "/array/{token}/config.js": {
            "get": _get(
                "posthog-js remote config as a script",
                "sdk",
                "token",
                body="application/javascript",
            )
        },
        "/v1/projects/{write_key}/settings": {
            "get": _get("analytics.js settings: deliver here", "sdk", "write_key")
        },
        "/v1/m": {
            "post": {
                "summary": "analytics.js's own delivery metrics (taken and dropped)",
                "tags": ["sdk"],
                "security": [{}],
                "responses": {"200": response("Taken")},
            }
        },
        "/usertide.js": {"get": _get("The browser snippet", "sdk", body="application/javascript")},
        "/openapi.json": {"get": _get("This description", "ops")},
    }
    paths: dict[str, Any] = {
        **ingest_paths,
        **sdk_paths,
        "/v1/users/{user_id}": {
            "get": admin(
                {
                    "summary": "Profile and current session features of a user",
                    "tags": ["users"],
                    "parameters": [user_param],
                    "responses": {"200": response("The user"), **errors(404)},
                }
            ),
            "delete": admin(
                {
                    "summary": "Erase everything about a user",
                    "tags": ["users"],
                    "parameters": [user_param],
                    "responses": {"200": response("What was erased")},
                }
            ),
        },
        "/v1/events": {
            "get": admin(
                {
                    "summary": "Events, filtered and paginated",
                    "tags": ["events"],
                    "parameters": [
                        param(n, schema=s)
                        for n, s in (
                            ("user_id", {"type": "string"}),
                            ("anonymous_id", {"type": "string"}),
                            ("name", {"type": "string"}),
                            ("since", {"type": "string", "format": "date-time"}),
                            ("until", {"type": "string", "format": "date-time"}),
                            ("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                            ("cursor", {"type": "string"}),
                        )
                    ],
                    "responses": {"200": response("A page of events"), **errors(400)},
                }
            )
        },
        "/v1/failed-events": {
            "get": admin(
                {
                    "summary": "Input kept because it could not become an event",
                    "tags": ["events"],
                    "parameters": [
                        param("limit", schema={"type": "integer", "minimum": 1, "maximum": 1000}),
                        param("reason", schema={"type": "string"}),
                    ],
                    "responses": {"200": response("Failed events"), **errors(400)},
                }
            )
        },
        "/v1/risk/login": {
            "post": admin(
                {
                    "summary": "Score a sign-in now: allow, challenge or deny, with reasons",
                    "tags": ["risk"],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["user_id", "ip"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "user_id": {"type": "string"},
                                        "ip": {"type": "string"},
                                        "user_agent": {"type": "string"},
                                        "success": {"type": "boolean"},
                                        "timestamp": {"type": "string", "format": "date-time"},
                                        "event_id": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": response(
                            "The decision",
                            {
                                "type": "object",
                                "properties": {
                                    "score": {"type": "number"},
                                    "level": {"enum": ["low", "medium", "high"]},
                                    "action": {"enum": ["allow", "challenge", "deny"]},
                                    "reasons": {"type": "array"},
                                    "alert_id": {"type": ["string", "null"]},
                                },
                            },
                        ),
                        **errors(400, 503),
                    },
                }
            )
        },
        "/v1/alerts": {
            "get": admin(
                {
                    "summary": "Alerts, newest first",
                    "tags": ["alerts"],
                    "parameters": [
                        param("status", schema={"enum": ["open", "confirmed", "dismissed"]}),
                        param("user_id", schema={"type": "string"}),
                        param("limit", schema={"type": "integer", "minimum": 1, "maximum": 1000}),
                    ],
                    "responses": {"200": response("Alerts"), **errors(400)},
                }
            )
        },
        "/v1/alerts/{alert_id}": {
            "get": admin(
                {
                    "summary": "One alert with its evidence",
                    "tags": ["alerts"],
                    "parameters": [param("alert_id", "path")],
                    "responses": {"200": response("The alert"), **errors(404)},
                }
            )
        },
        "/v1/alerts/{alert_id}/feedback": {
            "post": admin(
                {
                    "summary": "Record a verdict; it teaches the model",
                    "tags": ["alerts"],
                    "parameters": [param("alert_id", "path")],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["verdict"],
                                    "properties": {
                                        "verdict": {
                                            "enum": [
                                                "confirmed",
                                                "dismissed",
                                                "safe",
                                                "compromised",
                                            ]
                                        },
                                        "note": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {"200": response("The updated alert"), **errors(400, 404, 503)},
                }
            )
        },
        "/v1/feedback/{token}": {
            "get": {
                **_get(
                    "The page behind a signed e-mail link (changes nothing)",
                    "alerts",
                    "token",
                    body="text/html",
                ),
                "responses": {
                    "200": {"description": "Confirmation page", "content": {"text/html": {}}},
                    "400": {"description": "Invalid or expired link", "content": {"text/html": {}}},
                },
            },
            "post": {
                **_get("Answer a signed e-mail link", "alerts", "token", body="text/html"),
                "responses": {
                    "200": {"description": "Answer recorded", "content": {"text/html": {}}},
                    "400": {"description": "Invalid or expired link", "content": {"text/html": {}}},
                },
            },
        },
        "/healthz": {
            "get": {
                "summary": "Liveness; details with an admin key",
                "tags": ["ops"],
                "responses": {"200": response("Healthy"), "503": response("Degraded")},
            }
        },
        "/metrics": {
            "get": admin(
                {
                    "summary": "Prometheus metrics",
                    "tags": ["ops"],
                    "responses": {
                        "200": {"description": "Prometheus text", "content": {"text/plain": {}}}
                    },
                }
            )
        },
    }
    for more in extra:
        for path, operations in more.items():
            paths.setdefault(path, {}).update(operations)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "usertide",
            "version": __version__,
            "description": "Real-time user behaviour analysis.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                }
            },
            "securitySchemes": {
                "adminKey": {"type": "http", "scheme": "bearer"},
                "writeKeyBasic": {"type": "http", "scheme": "basic"},
            },
        },
    }
