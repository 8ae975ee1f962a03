"""What analytics SQL needs that databases spell differently.

Analytics build their queries from these pieces and run them in the store
(``Store.select``); each store names its dialect. DuckDB's is here; PostgreSQL's
comes with its store.
"""

from __future__ import annotations

from typing import Any, ClassVar


class Dialect:
    """SQL spellings (DuckDB's). Every method returns SQL text; values are bound."""

    name: ClassVar[str] = "duckdb"

    def json_text(self, column: str, path: str) -> tuple[str, tuple[Any, ...]]:
        """The text at JSON ``path`` (``$."a"."b"``) of a JSON text ``column``."""
        return f"json_extract_string({column}, ?)", (path,)

    def in_list(self, sql: str) -> str:
        """``sql`` is one of the values of one bound list."""
        return f"list_contains(?, {sql})"

    def to_double(self, sql: str) -> str:
        return f"TRY_CAST({sql} AS DOUBLE)"

    def contains(self, sql: str) -> str:
        """Case-insensitive substring test against one bound value."""
        return f"contains(lower({sql}), lower(?))"

    def utc_bucket(self, unit: str, ts: str) -> str:
        """The start of the UTC ``unit`` (minute, hour, day, week: ISO, Monday) of ``ts``."""
        return f"date_trunc('{unit}', {ts} AT TIME ZONE 'UTC')"

    def seconds_between(self, earlier: str, later: str) -> str:
        return f"epoch({later} - {earlier})"

    def quantile(self, sql: str, q: float) -> str:
        return f"quantile_cont({sql}, {float(q)!r})"

    def next_after(self, left: str, right: str, on: str, pos: str) -> str:
        """Join each row of ``left`` (an alias) with the first row of ``right`` (a table
        and its alias) that has the same ``on`` column and a ``pos`` above the left row's
        ``pk`` (rows without one drop out): ``FROM x AS left <this>``."""
        alias = right.split()[-1]
        return f"ASOF JOIN {right} ON {left}.{on} = {alias}.{on} AND {left}.pk < {alias}.{pos}"


DUCKDB = Dialect()
