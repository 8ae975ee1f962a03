"""``where`` filters: ``{"properties.category": "4"}`` or, per field, operators.

A filter maps field paths to a value (equality; a list means any of them) or to an
object of operators, all of which must hold::

    {"properties.price": {">": 10, "<=": 100}, "context.country": ["US", "CA"],
     "properties.coupon": {"is_set": true}, "context.page_path": {"contains": "/shoes"}}

Operators: ``=`` ``!=`` ``>`` ``>=`` ``<`` ``<=`` ``contains`` ``is_set`` (also spelt
``eq`` ``neq`` ``gt`` ``gte`` ``lt`` ``lte``). A number compares numerically, text as
text; ``!=`` also holds where the field is not set (as PostHog's "is not").
"""

from __future__ import annotations

from typing import Any

from usertide.analytics.errors import AnalyticsError
from usertide.analytics.fields import Field, numeric, parse_field
from usertide.analytics.sql import Dialect

_WORDS = {"eq": "=", "neq": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_OPERATORS = {"=", "!=", ">", ">=", "<", "<=", "contains", "is_set"}
MAX_TERMS = 50


def where_sql(where: object, name: str, dialect: Dialect) -> tuple[str, list[Any]]:
    """The SQL condition (``TRUE`` when empty) and its parameters."""
    if where is None:
        return "TRUE", []
    if not isinstance(where, dict):
        raise AnalyticsError(name, f"'{name}' must be an object of field: condition")
    if len(where) > MAX_TERMS:
        raise AnalyticsError(name, f"'{name}' has more than {MAX_TERMS} fields")
    clauses: list[str] = []
    params: list[Any] = []
    for path, condition in where.items():
        field = parse_field(path, f"{name}.{path}", dialect)
        terms = condition if isinstance(condition, dict) else {"=": condition}
        if not terms:
            raise AnalyticsError(f"{name}.{path}", f"'{name}.{path}' has no operator")
        for raw_op, value in terms.items():
            op = _WORDS.get(raw_op, raw_op)
            if op not in _OPERATORS:
                raise AnalyticsError(
                    f"{name}.{path}",
                    f"unknown operator {raw_op!r} in '{name}.{path}' (use one of "
                    f"{', '.join(sorted(_OPERATORS))})",
                )
            sql, values = _term(field, op, value, f"{name}.{path}", dialect)
            clauses.append(sql)
            params += values
    return " AND ".join(f"({c})" for c in clauses) or "TRUE", params


def _term(field: Field, op: str, value: Any, where: str, dialect: Dialect) -> tuple[str, list[Any]]:
    params = list(field.params)
    if op == "is_set":
        if not isinstance(value, bool):
            raise AnalyticsError(where, f"'is_set' in '{where}' must be true or false")
        return f"{field.sql} IS {'NOT ' if value else ''}NULL", params
    if op == "contains":
        if not isinstance(value, str):
            raise AnalyticsError(where, f"'contains' in '{where}' must be text")
        return dialect.contains(field.sql), [*params, value]
    if op in ("=", "!=") and isinstance(value, list):
        if not value or len(value) > 1000:
            raise AnalyticsError(where, f"the list in '{where}' must have 1 to 1000 values")
        parts = [_equals(field, v, where, dialect) for v in value]
        sql = " OR ".join(p[0] for p in parts)
        values = [x for p in parts for x in p[1]]
        return (f"NOT coalesce({sql}, FALSE)" if op == "!=" else sql), values
    if op in ("=", "!="):
        sql, values = _equals(field, value, where, dialect)
        return (f"NOT coalesce({sql}, FALSE)" if op == "!=" else sql), values
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AnalyticsError(where, f"'{op}' in '{where}' must compare with a number")
    number = numeric(field, dialect)
    return f"{number.sql} {op} ?", [*number.params, float(value)]


def _equals(field: Field, value: Any, where: str, dialect: Dialect) -> tuple[str, list[Any]]:
    if isinstance(value, bool):
        return f"{field.sql} = ?", [*field.params, "true" if value else "false"]
    if isinstance(value, int | float):
        number = numeric(field, dialect)
        return f"{number.sql} = ?", [*number.params, float(value)]
    if isinstance(value, str):
        return f"{field.sql} = ?", [*field.params, value]
    raise AnalyticsError(where, f"'{where}' must compare with text, a number or true/false")
