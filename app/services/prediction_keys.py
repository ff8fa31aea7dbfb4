"""The cache key of a predicted row: the model, the version and the SHA-256 of the row's
canonical JSON (RFC 8785), so key order and number spelling do not matter.

Rules: docs/reference/specification.md#predictions-and-the-cache."""

from __future__ import annotations

import functools
import hashlib
import re
import uuid
from operator import itemgetter
from typing import Any

import orjson
import rfc8785

from app.adapters.cache import Cache


def row_keys(
    cache: Cache, model_id: uuid.UUID, version: int, rows: list[dict[str, Any]]
) -> list[str]:
    prefix = _prefix(cache.key("pred", "v1"), model_id, version)
    sha256 = hashlib.sha256
    return [prefix + sha256(form).hexdigest() for form in canonical_rows(rows)]


@functools.lru_cache(maxsize=1024)
def _prefix(start: str, model_id: uuid.UUID, version: int) -> str:
    """`<start>:<model uuid>:<version>:`, written once per version (a UUID's text is written
    in Python on every call)."""
    return f"{start}:{model_id}:{version}:"


def canonical_rows(rows: list[dict[str, Any]]) -> list[bytes]:
    """Each row's JCS form. The rows of a batch usually share their names and hold plain
    numbers: those are written all at once (`_numbers_only`); any other batch row by row, by
    `canonical_row`."""
    template = _template(rows[0]) if len(rows) > 1 else None  # one row: no template to build
    found = _numbers_only(rows, *template) if template is not None else None
    return found if found is not None else [canonical_row(row) for row in rows]


def _numbers_only(rows: list[dict[str, Any]], names: list[str], text: bytes) -> list[bytes] | None:
    """Every row's JCS form at once, when every row has exactly `names` and only numbers that
    orjson writes as JCS does (else None): each column is written by orjson in one call, and the
    rows are put together from the columns' texts by `text`, a %-template. orjson writes a
    float's shortest digits as JCS does between 1e-6 and 1e21; outside that, and for integral
    floats (`5.0` where JCS writes `5`), its text has an `e` or ends in `.0`, which sends the
    batch the other way; so do integers past 2**53 and NaN or infinity (which it writes as
    `null`)."""
    if set(map(len, rows)) != {len(names)}:
        return None
    written = []
    for name in names:
        try:
            column = list(map(itemgetter(name), rows))
        except (KeyError, TypeError):  # a row without the name, or not an object
            return None
        kinds = set(map(type, column))
        if not kinds <= _NUMBERS:
            return None
        if int in kinds and not -MAX_SAFE_INTEGER <= min(column) <= max(column) <= MAX_SAFE_INTEGER:
            return None
        found = orjson.dumps(column)
        if b"e" in found or b"n" in found or b".0," in found or found.endswith(b".0]"):
            return None
        written.append(found[1:-1].split(b","))
    return list(map(text.__mod__, zip(*written, strict=True))) if names else [text] * len(rows)


MAX_SAFE_INTEGER = 2**53 - 1


def canonical_row(row: dict[str, Any]) -> bytes:
    """The row's JCS form (RFC 8785). A flat row of ASCII names and values that orjson writes
    exactly as JCS does (ASCII strings, safe integers, booleans, null, and floats written
    without an exponent), its names sorted, is written by orjson, many times faster; anything
    else by rfc8785, which also refuses what JSON cannot say (NaN, infinity, unsafe
    integers)."""
    if all(key.isascii() for key in row) and all(_writes_as_jcs(v) for v in row.values()):
        return orjson.dumps(row, option=orjson.OPT_SORT_KEYS)
    return rfc8785.dumps(row)


_NUMBERS = {float, int}
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.\- ]*")


def _template(row: dict[str, Any]) -> tuple[list[str], bytes] | None:
    """The names in JCS order and a %-template writing a row of them (each value already
    written), when every name is written as it is (letters, digits, `_`, `.`, `-`, space: no
    escape and no sorting by UTF-16 units that differs from Python's)."""
    names = sorted(row)
    if not all(_SAFE_NAME.fullmatch(name) for name in names):
        return None
    return names, ("{" + ",".join(f'"{name}":%b' for name in names) + "}").encode()


def _plain_number(value: Any) -> bool:
    """A number orjson (and Python's `repr`) spells as JCS does."""
    kind = type(value)
    if kind is float:
        # orjson writes 5.0 and 1e16 where JCS writes 5 and 10000000000000000, Python 1e-05
        # where JCS writes 0.00001; between, the same digits.
        return bool(not value.is_integer() and 1e-4 <= abs(value) < 1e16)
    return kind is int and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER


def _writes_as_jcs(value: Any) -> bool:
    """A value orjson writes as JCS does."""
    if type(value) is str:
        return value.isascii()
    return type(value) is bool or value is None or _plain_number(value)
