"""What browser SDKs ask for before (and beside) sending events.

posthog-js loads its remote configuration (``/array/{token}/config.js``, then
``/array/{token}/config``) and its feature flags (``/flags/?v=2``; older versions
``/decide/``); analytics.js loads its settings from ``{cdnURL}/v1/projects/{writeKey}
/settings`` and posts its own metrics to ``{apiHost}/m``. usertide has no feature flags,
surveys or session replay: it answers with an empty configuration that says so, so the
SDKs go on capturing normally instead of retrying or giving up on a 404. The answers
reveal nothing: they are the same whether or not the key is valid (events with a bad
key are refused at capture, with a 401 that says why).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from usertide.web.errors import json_response

# gzip-js makes posthog-js gzip its batches (the collector also sniffs gzip by its bytes).
_SUPPORTED_COMPRESSION = ["gzip", "gzip-js"]


def remote_config(token: str) -> dict[str, Any]:
    """posthog-js's remote config: every server-side feature off."""
    return {
        "token": token,
        "supportedCompression": _SUPPORTED_COMPRESSION,
        "hasFeatureFlags": False,  # posthog-js then skips the /flags call
        "captureDeadClicks": False,
        "capturePerformance": False,
        "autocapture_opt_out": False,
        "autocaptureExceptions": False,
        "elementsChainAsString": True,
        "sessionRecording": False,
        "heatmaps": False,
        # No "surveys" key: posthog-js fetches its surveys script even for `false`.
        "siteApps": [],
    }


def flags_answer() -> dict[str, Any]:
    """``/flags`` (v2) and ``/decide`` (v3/v4): no flags, and the legacy config keys."""
    return {
        "flags": {},
        "featureFlags": {},
        "featureFlagPayloads": {},
        "errorsWhileComputingFlags": False,
        "quotaLimited": [],
        "requestId": str(uuid.uuid4()),
        "config": {"enable_collect_everything": True},
        "toolbarParams": {},
        "isAuthenticated": False,
        **{k: v for k, v in remote_config("").items() if k != "token"},
    }


def segment_settings(write_key: str, api_host: str, protocol: str) -> dict[str, Any]:
    """analytics.js settings: deliver to this server, no destinations, no metrics."""
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": api_host,
                "protocol": protocol,
                "unbundledIntegrations": [],
                "addBundledMetadata": False,
                "maybeBundledConfigIds": {},
            }
        },
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }


def script_literal(value: Any) -> str:
    """JSON that is safe inside a script, whatever strings it holds."""
    text = json.dumps(value, separators=(",", ":"))
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text


async def flags(request: Request) -> Response:
    return json_response(flags_answer())


async def array_config(request: Request) -> Response:
    return json_response(remote_config(request.path_params["token"][:256]))


async def array_config_js(request: Request) -> Response:
    token = request.path_params["token"][:256]
    entry = script_literal({"config": remote_config(token), "siteApps": []})
    body = (
        "(function(){var w=window;w._POSTHOG_REMOTE_CONFIG=w._POSTHOG_REMOTE_CONFIG||{};"
        f"w._POSTHOG_REMOTE_CONFIG[{script_literal(token)}]={entry};}})();\n"
    )
    return Response(body, media_type="application/javascript")


async def project_settings(request: Request) -> Response:
    url = request.base_url
    api_host = f"{url.netloc}{url.path.rstrip('/')}/v1"
    key = request.path_params["write_key"][:256]
    return json_response(segment_settings(key, api_host, url.scheme))


async def sdk_metrics(request: Request) -> Response:
    # analytics.js's delivery metrics about itself, not user behaviour: taken and dropped.
    return json_response({"success": True})


def routes() -> list[Route]:
    return [
        *(
            Route(path, flags, methods=["GET", "POST"])
            for path in ("/flags", "/flags/", "/decide", "/decide/")
        ),
        Route("/array/{token}/config", array_config, methods=["GET"]),
        Route("/array/{token}/config.js", array_config_js, methods=["GET"]),
        Route("/v1/projects/{write_key}/settings", project_settings, methods=["GET"]),
        Route("/v1/m", sdk_metrics, methods=["POST"]),
    ]
