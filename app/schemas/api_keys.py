from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import ConfigDict, Field, field_validator

from app.core.security import Scope
from app.schemas.common import Page, Schema

_HIDDEN = r"\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_CHAR, _SPACED = rf"[^\s{_HIDDEN}]", rf"[^{_HIDDEN}]"


class ApiKeyCreate(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=100,
        # One line, no space at either end, no control character or bidirectional override.
        pattern=rf"^{_CHAR}(?:{_SPACED}*{_CHAR})?$",
    )
    scopes: list[Scope] = Field(min_length=1, json_schema_extra={"uniqueItems": True})

    @field_validator("scopes")
    @classmethod
    def _distinct(cls, scopes: list[Scope]) -> list[Scope]:
        if len(set(scopes)) != len(scopes):
            raise ValueError("scopes must not repeat")
        return scopes


class ApiKeyRead(Schema):
    id: uuid.UUID
    name: str
    scopes: list[Scope]
    prefix: str = Field(description="The first characters of the key, to recognise it")
    created_at: datetime
    revoked_at: datetime | None


class CurrentKey(Schema):
    """The key a request was made with: what a client can do with it, and nothing secret."""

    id: uuid.UUID
    name: str
    scopes: list[Scope] = Field(
        description="Effective scopes: `admin` holds them all, `write` `read`"
    )


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The secret; shown only in this response")


class ApiKeyPage(Page[ApiKeyRead]):
    """A page of API keys."""
