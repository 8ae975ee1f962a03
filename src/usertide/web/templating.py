"""HTML for the dashboard: Jinja2 templates with autoescape, and the headers every page
carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.responses import HTMLResponse

TEMPLATES = Path(__file__).parent / "templates"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    # Everything a template shows may come from a user or a property: escape it all.
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

# Scripts only from this origin and never inline, so a value that slipped past escaping
# still cannot run. Plotly styles its charts with inline styles; forms and fetches stay
# on this origin; no one may frame the pages (clickjacking the feedback buttons).
CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Pages show data only a signed-in admin may see: never cache them anywhere.
    "Cache-Control": "no-store",
}


def render(name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    html = _env.get_template(name).render(context)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
