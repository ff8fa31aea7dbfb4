"""The cache key's canonical form: the fast writer must agree with RFC 8785 byte for byte, or a
row would be cached twice under two keys (or, worse, two rows under one)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from app.services.prediction_keys import canonical_row, canonical_rows

SCALARS = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.text(max_size=12)
    | st.booleans()
    | st.none()
)
ROWS = st.dictionaries(st.text(max_size=8), SCALARS | st.lists(SCALARS, max_size=3), max_size=6)


def jcs(row: dict[str, Any]) -> bytes | None:
    try:
        return rfc8785.dumps(row)
    except (ValueError, TypeError, rfc8785.CanonicalizationError):
        return None


def agrees_with_rfc8785(row: dict[str, Any]) -> None:
    expected = jcs(row)
    if expected is None:
        with pytest.raises((ValueError, TypeError, rfc8785.CanonicalizationError)):
            canonical_row(row)
    else:
        assert canonical_row(row) == expected


@settings(max_examples=3000, deadline=None)
@given(ROWS)
def test_the_canonical_form_is_rfc8785(row: dict[str, Any]) -> None:
    agrees_with_rfc8785(row)


@pytest.mark.parametrize(
    "value",
    [
        0.1,
        1e-4,
        9.9e-5,
        1e-7,
        5.0,
        -0.0,
        1e15 + 0.5,
        1e16,
        1e21,
        2**53 - 1,
        2**53,
        "é",
        "\x7f\x1f",
        math.nan,
        math.inf,
    ],
)
def test_edges_of_the_fast_writer(value: Any) -> None:
    agrees_with_rfc8785({"x": value})
    agrees_with_rfc8785({"x": value, "é": 1})
    agrees_with_rfc8785({"x": [value]})


NAMES = st.lists(
    st.text(alphabet='abAB01_.- %"\\é\x1f', max_size=4), min_size=0, max_size=4, unique=True
)
NUMBERS = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.sampled_from([0.1, 1e-4, 9.9e-5, 1e16 - 1.5, 1e16, -0.0, 5.0, True, None, "1"])
)


@settings(max_examples=1500, deadline=None)
@given(
    NAMES, st.lists(st.lists(NUMBERS, min_size=4, max_size=4), min_size=1, max_size=8), st.data()
)
def test_a_batch_is_written_as_each_row_alone(
    names: list[str], values: list[list[Any]], data: st.DataObject
) -> None:
    """The batch writer (one template for rows sharing the first row's names) agrees with
    RFC 8785 row by row, whatever the names, and for rows that drop or add a name."""
    rows = [dict(zip(names, row, strict=False)) for row in values]
    if len(rows) > 1 and data.draw(st.booleans()):
        rows[-1] = {**rows[-1], "extra": 0.5}
    if len(rows) > 1 and names and data.draw(st.booleans()):
        rows[0].pop(names[0])
    expected = [jcs(row) for row in rows]
    if None in expected:
        with pytest.raises((ValueError, TypeError, rfc8785.CanonicalizationError)):
            canonical_rows(rows)
    else:
        assert canonical_rows(rows) == expected


ONLY_NUMBERS = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
    | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
    | st.sampled_from([0.1, 1e-4, 9.9e-5, 1e-6, 1e-7, 1e16 - 1.5, 1e16, 1e21, -0.0, 5.0, 2**53])
)


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(st.text(alphabet="abAB01_.- ", max_size=4), min_size=1, max_size=4, unique=True),
    st.lists(st.lists(ONLY_NUMBERS, min_size=4, max_size=4), min_size=2, max_size=8),
)
def test_a_batch_of_numbers_is_written_at_once_as_each_row_alone(
    names: list[str], values: list[list[Any]]
) -> None:
    """Rows of numbers only, sharing their names, are written all at once (orjson's digits,
    checked): byte for byte RFC 8785, row by row, wherever the numbers fall."""
    rows = [dict(zip(names, row, strict=False)) for row in values]
    expected = [jcs(row) for row in rows]
    if None in expected:  # 2**53: past the integers JSON numbers hold exactly
        with pytest.raises(rfc8785.IntegerDomainError):
            canonical_rows(rows)
    else:
        assert canonical_rows(rows) == expected


def test_numbers_past_what_orjson_writes_send_the_batch_the_other_way() -> None:
    rows = [{"a": 0.5, "b": 2**70}, {"a": 0.25, "b": 1}]  # orjson refuses integers past 64 bits
    with pytest.raises(rfc8785.IntegerDomainError):
        canonical_rows(rows)
    assert canonical_rows([{"a": 0.5, "b": 3}, {"a": 0.25, "b": 2**53 - 1}]) == [
        rfc8785.dumps({"a": 0.5, "b": 3}),
        rfc8785.dumps({"a": 0.25, "b": 2**53 - 1}),
    ]
