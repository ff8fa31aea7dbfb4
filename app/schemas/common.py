"""Shapes shared by every router: pages and problem details."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, StringConstraints

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
ADDRESS = r"^0x[0-9a-fA-F]{40}$"  # mixed case must also be a valid EIP-55 checksum
MAX_INTEGER = 2**31 - 1  # Postgres `integer`: version numbers, sample sizes
MAX_BIGINT = 2**63 - 1  # Postgres `bigint`: offsets

# Every text that can reach Postgres: its text fields cannot hold NUL. A pattern, not a Python
# validator, so it is checked in pydantic-core (10,000 outcome events a batch) and documented.
NO_NUL = r"^[^\x00]*$"
# What people read (descriptions, tag values, reasons, names): no control characters but tab and
# line breaks, no C1 controls, no bidirectional overrides or isolates (which make `ops\u202eyek`
# display as something else) and no ANSI escapes (ESC is a control character).
NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$"
# The same on one line: names.
ONE_LINE = r"^[^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$"
Text = Annotated[str, StringConstraints(pattern=NO_CONTROL)]
Name = Annotated[str, StringConstraints(pattern=ONE_LINE)]
# What an A/B test randomises (a user, a lead): one rule wherever a unit id is taken.
UnitId = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=NO_NUL)]


def _whole(value: Any) -> Any:
    """JSON Schema's `integer` admits 3.0; so do we. Strings and booleans stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# A positive integer as JSON Schema means it, stored in a Postgres `integer` (the bounds go
# before the validator: after it, they would not appear in the JSON Schema).
PositiveInteger = Annotated[int, Strict(), Field(ge=1, le=MAX_INTEGER), BeforeValidator(_whole)]
VersionNumber = PositiveInteger

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$"
)


def _rfc3339(value: Any) -> Any:
    """Times are RFC 3339 text; pydantic alone would also read `0.5` or `true` as epochs."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 time, like 2026-11-01T00:00:00Z")
    return value


Time = Annotated[datetime, BeforeValidator(_rfc3339)]


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(Schema, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["urn:hokusai:problem:validation_failed"])
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable error code")
    request_id: str
    errors: list[FieldError] | None = Field(None, description="Present on validation failures")
