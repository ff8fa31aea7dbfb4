"""The cache key of a predicted row: the model, the version and the SHA-256 of the row's
canonical JSON (RFC 8785), so key order and number spelling do not matter.

Rules: docs/reference/specification.md#predictions-and-the-cache."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import rfc8785

from app.adapters.cache import Cache


def row_key(cache: Cache, model_id: uuid.UUID, version: int, row: dict[str, Any]) -> str:
    digest = hashlib.sha256(canonical_row(row)).hexdigest()
    return cache.key("pred", "v1", str(model_id), str(version), digest)


MAX_SAFE_INTEGER = 2**53 - 1
# Built once (json.dumps with arguments builds an encoder per call).
_jcs_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical_row(row: dict[str, Any]) -> bytes:
    """The row's JCS form (RFC 8785). A flat row of ASCII names and values that `json.dumps`
    writes exactly as JCS does (ASCII strings, safe integers, booleans, null, and floats written
    without an exponent) is written by `json.dumps`, several times faster; anything else by
    rfc8785, which also refuses what JSON cannot say (NaN, infinity, unsafe integers)."""
    if all(key.isascii() for key in row) and all(_writes_as_jcs(v) for v in row.values()):
        return _jcs_dumps(row).encode()
    return rfc8785.dumps(row)


def _writes_as_jcs(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        # Python writes 5.0 and 1e-05 where JCS writes 5 and 0.00001; between, the same digits.
        return bool(not value.is_integer() and 1e-4 <= abs(value) < 1e16)
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    if kind is str:
        return bool(value.isascii())
    return kind is bool or value is None
