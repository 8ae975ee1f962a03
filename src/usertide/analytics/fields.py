"""Field paths as analytics requests name them, and the SQL that reads them.

A path is a column (``name``, ``user_id``, ``anonymous_id``, ``session_id``,
``type``), a context field (``context.country``, ``context.page_path``,
``context.browser``, or any ``context.geo.city``-style path into the stored context),
a property (``properties.category``, nested: ``properties.cart.total``) or a trait
(``traits.plan``). Values come back as text (JSON strings unquoted, numbers and
booleans as JSON spells them); :func:`numeric` reads them as numbers.

The JSON path is always a bound parameter, never spliced into the SQL, so a property
name can hold any character.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from usertide.analytics.errors import AnalyticsError
from usertide.analytics.sql import Dialect

COLUMNS = {
    "name": "e.name",
    "event": "e.name",
    "type": "e.type",
    "user_id": "e.user_id",
    "anonymous_id": "e.anonymous_id",
    "session_id": "e.session_id",
}
# Typed columns and short names for the context fields people group by most.
CONTEXT_COLUMNS = {"country": "e.country", "page_path": "e.page_path", "page": "e.page_path"}
CONTEXT_ALIASES = {
    "city": ("geo", "city"),
    "region": ("geo", "region"),
    "country_name": ("geo", "country_name"),
    "asn": ("geo", "asn"),
    "network": ("geo", "as_org"),
    "browser": ("device", "browser"),
    "browser_version": ("device", "browser_version"),
    "os": ("device", "os"),
    "device_type": ("device", "device_type"),
    "referrer": ("page_referrer",),
}
_JSON_COLUMNS = {"properties": "e.properties", "traits": "e.traits", "context": "e.context"}
MAX_PATH = 256


@dataclass(frozen=True)
class Field:
    """A readable field: ``sql`` with ``params`` bound in order."""

    path: str
    sql: str
    params: tuple[Any, ...] = ()


def parse_field(path: object, where: str, dialect: Dialect) -> Field:
    """The field named ``path``; ``where`` names the request field for errors."""
    if not isinstance(path, str) or not path.strip():
        raise AnalyticsError(where, f"'{where}' must be a field path such as properties.category")
    if len(path) > MAX_PATH:
        raise AnalyticsError(where, f"'{where}' is longer than {MAX_PATH} characters")
    if path in COLUMNS:
        return Field(path, COLUMNS[path])
    head, _, rest = path.partition(".")
    if head not in _JSON_COLUMNS or not rest:
        raise AnalyticsError(
            where,
            f"'{where}' must be one of {', '.join(sorted(COLUMNS))} or start with "
            "properties., traits. or context.",
        )
    parts = tuple(rest.split("."))
    if any(not p for p in parts):
        raise AnalyticsError(where, f"'{where}' has an empty part: {path!r}")
    if head == "context":
        if len(parts) == 1 and parts[0] in CONTEXT_COLUMNS:
            return Field(path, CONTEXT_COLUMNS[parts[0]])
        if len(parts) == 1 and parts[0] in CONTEXT_ALIASES:
            parts = CONTEXT_ALIASES[parts[0]]
    sql, params = dialect.json_text(_JSON_COLUMNS[head], json_path(parts))
    return Field(path, sql, params)


def json_path(parts: tuple[str, ...]) -> str:
    """``$."a"."b"``: every key quoted, so dots, spaces and quotes in names are safe."""
    return "$" + "".join('."' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in parts)


def numeric(field: Field, dialect: Dialect) -> Field:
    """The field as a number (NULL where it is not one)."""
    return Field(field.path, dialect.to_double(field.sql), field.params)
