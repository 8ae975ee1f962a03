"""The dashboard's scripts and styles: plotly.js from the installed ``plotly`` package and
our own files from ``static/dashboard``. Nothing comes from a CDN.

Assets need no session: they are public code, and the sign-in page uses them.
"""

from __future__ import annotations

import functools
import gzip
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from usertide.web.errors import ApiError
from usertide.web.openapi import errors, param

STATIC = Path(__file__).parent / "static" / "dashboard"
PLOTLY_PATH = "/dashboard/static/plotly.min.js"
MEDIA_TYPES = {".js": "application/javascript", ".css": "text/css"}
# Pages ask for plotly.min.js?v=<version>: a new plotly is a new URL, so a year is safe.
PLOTLY_CACHE = "public, max-age=31536000, immutable"
# Our own files change with the code (an editable install changes them in place): the
# browser keeps them but asks again each time, and gets a 304 while the ETag holds.
OWN_CACHE = "no-cache"


def plotly_version() -> str:
    try:
        return version("plotly")
    except PackageNotFoundError:
        return "missing"


def _plotly_file() -> Path | None:
    try:
        path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None


@functools.cache
def _plotly_gzipped(path: Path) -> bytes:
    # ~4.8 MB of script becomes ~1.4 MB; compressed once per process.
    return gzip.compress(path.read_bytes(), compresslevel=6, mtime=0)


async def plotly(request: Request) -> Response:
    path = _plotly_file()
    if path is None:
        raise ApiError(404, "not_found", "the plotly package is not installed")
    headers = {"Cache-Control": PLOTLY_CACHE, "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        body = await run_in_threadpool(_plotly_gzipped, path)
        return Response(
            body,
            media_type="application/javascript",
            headers={**headers, "Content-Encoding": "gzip"},
        )
    return FileResponse(path, media_type="application/javascript", headers=headers)


def _own_files() -> dict[str, Path]:
    """Only the files that ship in the folder (no path from the request reaches disk)."""
    if not STATIC.is_dir():
        return {}
    return {p.name: p for p in STATIC.iterdir() if p.is_file() and p.suffix in MEDIA_TYPES}


OWN_FILES = _own_files()


async def own(request: Request) -> Response:
    path = OWN_FILES.get(request.path_params["name"])
    if path is None:
        raise ApiError(404, "not_found", "no such dashboard file")
    return FileResponse(
        path,
        media_type=MEDIA_TYPES[path.suffix],
        headers={"Cache-Control": OWN_CACHE, "X-Content-Type-Options": "nosniff"},
    )


def routes() -> list[Route]:
    return [
        # Listed first: the next route would take this name too.
        Route(PLOTLY_PATH, plotly, methods=["GET"]),
        Route("/dashboard/static/{name:str}", own, methods=["GET"]),
    ]


def _asset(summary: str, *params: dict[str, Any]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "tags": ["dashboard"],
            "security": [{}],
            "parameters": list(params),
            "responses": {
                "200": {
                    "description": summary,
                    "content": {
                        "application/javascript": {"schema": {"type": "string"}},
                        "text/css": {"schema": {"type": "string"}},
                    },
                },
                **errors(404),
            },
        }
    }


OPENAPI: dict[str, dict[str, Any]] = {
    PLOTLY_PATH: _asset(
        "plotly.js from the installed plotly package (gzip when accepted; cached a year)",
        param("v"),
    ),
    "/dashboard/static/{name}": _asset(
        "The dashboard's own scripts and styles", param("name", "path")
    ),
}
