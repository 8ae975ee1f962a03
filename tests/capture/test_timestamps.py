from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from usertide.capture.errors import ItemError
from usertide.capture.timestamps import corrected_time, parse_time


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T04:04:05+01:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (1767322800, datetime(2026, 1, 2, 3, 0, tzinfo=UTC)),
        (1767322800000, datetime(2026, 1, 2, 3, 0, tzinfo=UTC)),
        (None, None),
    ],
)
def test_parse_time(raw: object, expected: datetime | None) -> None:
    assert parse_time(raw, "timestamp") == expected


@given(st.one_of(st.text(), st.integers(), st.floats(), st.booleans(), st.lists(st.none())))
def test_parse_time_never_raises_anything_but_item_errors(raw: object) -> None:
    try:
        result = parse_time(raw, "timestamp")
        if result is not None:
            corrected_time(result, None, datetime(2026, 1, 1, tzinfo=UTC))
    except ItemError:
        pass


@given(st.datetimes(timezones=st.just(UTC)), st.datetimes(timezones=st.just(UTC)))
def test_skew_correction_never_overflows(client: datetime, sent: datetime) -> None:
    with contextlib.suppress(ItemError):
        corrected_time(client, sent, datetime(2026, 1, 1, tzinfo=UTC))
