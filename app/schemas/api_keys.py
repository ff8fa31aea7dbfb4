from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import ConfigDict, Field, field_validator

from app.core.security import Scope
from app.schemas.common import Page, Schema


class ApiKeyCreate(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\s\x00]([^\x00\n]*[^\s\x00])?$")
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
