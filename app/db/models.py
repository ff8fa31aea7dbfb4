"""ORM models. Schema changes ship as Alembic migrations; a test checks the two agree."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.security import KEY_PREFIX
from app.db.base import Base, CreatedAt, UuidPrimaryKey


class ApiKey(UuidPrimaryKey, CreatedAt, Base):
    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(100))
    lookup: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    revoked_at: Mapped[datetime | None]

    @property
    def prefix(self) -> str:
        return KEY_PREFIX + self.lookup


class IdempotencyRecord(CreatedAt, Base):
    """The stored response of a creating POST, keyed by the caller's API key and Idempotency-Key."""

    __tablename__ = "idempotency_records"

    api_key_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None]
    response_body: Mapped[Any | None] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column(index=True)
