"""ORM models. Schema changes ship as Alembic migrations; a test checks the two agree."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.security import KEY_PREFIX
from app.core.vocabulary import (
    AbTestStatus,
    Basis,
    Family,
    MetricDirection,
    MetricKind,
    ModelType,
    Reason,
    Verdict,
    VersionKind,
)
from app.db.base import Base, CreatedAt, UpdatedAt, UuidPrimaryKey, Word


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


class Benchmark(CreatedAt, Base):
    """A held benchmark: a dataset file the service stores, named by the SHA-256 of its bytes.
    Immutable; only its retirement changes."""

    __tablename__ = "benchmarks"

    hash: Mapped[str] = mapped_column(String(71), primary_key=True)
    format: Mapped[str] = mapped_column(String(16))
    rows: Mapped[int]
    size_bytes: Mapped[int]
    columns: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    label_column: Mapped[str] = mapped_column(String(250))
    label_distribution: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    storage_uri: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(100))
    retired_at: Mapped[datetime | None]


class IdempotencyRecord(CreatedAt, Base):
    """The stored response of a creating POST, keyed by the caller's API key and Idempotency-Key."""

    __tablename__ = "idempotency_records"

    api_key_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None]
    response_body: Mapped[Any | None] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class MlModel(UuidPrimaryKey, CreatedAt, UpdatedAt, Base):
    """A model, addressed by its name (also its MLflow registered-model name)."""

    __tablename__ = "ml_models"

    name: Mapped[str] = mapped_column(String(128), unique=True)
    model_type: Mapped[ModelType] = mapped_column(Word(ModelType, 32), index=True)
    token_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(JSON)
    benchmark_metric: Mapped[str] = mapped_column(String(250))
    benchmark_direction: Mapped[MetricDirection] = mapped_column(Word(MetricDirection, 20))
    benchmark_family: Mapped[Family] = mapped_column(Word(Family, 20))
    # Set with the `benchmark` scope: improvements not measured on a held benchmark are refused.
    require_measurement: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # Left out of lists, takes no alias and serves no prediction; nothing is deleted.
    archived_at: Mapped[datetime | None] = mapped_column(default=None)


class ModelVersion(UuidPrimaryKey, CreatedAt, UpdatedAt, Base):
    """One registered version. Immutable but for its description, tags and archived flag."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "version"),
        Index(None, "model_id", "dataset_hash", "deltaone_accepted"),
    )

    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ml_models.id", ondelete="CASCADE"))
    version: Mapped[int]
    kind: Mapped[VersionKind] = mapped_column(Word(VersionKind, 16))
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(JSON)
    metrics: Mapped[dict[str, float]] = mapped_column(JSON)
    metric_stds: Mapped[dict[str, float]] = mapped_column(JSON)
    dataset_hash: Mapped[str] = mapped_column(String(71))
    dataset_num_samples: Mapped[int]
    benchmark_metric: Mapped[str] = mapped_column(String(250))
    benchmark_direction: Mapped[MetricDirection] = mapped_column(Word(MetricDirection, 20))
    benchmark_family: Mapped[Family] = mapped_column(Word(Family, 20))
    primary_metric_value: Mapped[float | None] = mapped_column(Float)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("model_versions.id"), index=True)
    # The baseline at the top of this version's line (itself for a baseline): the cumulative
    # gain needs it, and finding it by walking would cost the whole ancestry.
    root_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("model_versions.id"))
    delta: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    artifact_digest: Mapped[str] = mapped_column(String(71))
    source_uri: Mapped[str] = mapped_column(Text)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(100))
    deltaone: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    deltaone_accepted: Mapped[bool | None]
    deltaone_reason: Mapped[Reason | None] = mapped_column(Word(Reason, 40))
    deltaone_basis: Mapped[Basis | None] = mapped_column(Word(Basis, 16))
    # The decision's gain on the primary metric, exact, for sums over contributions.
    deltaone_gain_pp: Mapped[Decimal | None] = mapped_column(Numeric())  # any size: 1e302 % too
    attestation_id: Mapped[str | None] = mapped_column(String(71))
    archived_at: Mapped[datetime | None] = mapped_column(default=None)
    # The input columns its MLmodel file declares: [{name, type, required}], or None.
    input_signature: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)


class VersionContributor(Base):
    """A contributor's share of one version. The version's model, number, time and outcome are
    copied here (they never change once registered), so an address's impact is one index range,
    not a join over thousands of versions."""

    __tablename__ = "version_contributors"
    __table_args__ = (Index(None, "address", "created_at"),)

    version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    weight: Mapped[float] = mapped_column(Float)
    weight_bps: Mapped[int]
    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ml_models.id", ondelete="CASCADE"))
    version: Mapped[int]
    created_at: Mapped[datetime]
    gain_pp: Mapped[Decimal | None] = mapped_column(Numeric())
    deltaone_accepted: Mapped[bool | None]
    basis: Mapped[Basis | None] = mapped_column(Word(Basis, 16))
    attestation_id: Mapped[str | None] = mapped_column(String(71))


class ModelAlias(Base):
    """Where an alias points now; `AliasEvent` keeps every move."""

    __tablename__ = "model_aliases"

    model_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ml_models.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("model_versions.id"), index=True)
    updated_at: Mapped[datetime]


class AliasEvent(UuidPrimaryKey, Base):
    __tablename__ = "alias_events"
    __table_args__ = (Index(None, "model_id", "alias", "at"),)

    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ml_models.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(64))
    from_version: Mapped[int | None]
    to_version: Mapped[int | None]
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime]


class Attestation(CreatedAt, Base):
    """A signed in-toto statement about one improved version. Append-only: the API never
    changes or removes one; `payload` is the exact signed JSON (RFC 8785)."""

    __tablename__ = "attestations"

    id: Mapped[str] = mapped_column(String(71), primary_key=True)
    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ml_models.id"), index=True)
    version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("model_versions.id"), unique=True)
    previous_id: Mapped[str | None] = mapped_column(String(71))
    payload: Mapped[str] = mapped_column(Text)
    envelope: Mapped[dict[str, Any]] = mapped_column(JSON)
    eip712: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class SigningKey(CreatedAt, Base):
    """Every public key the service has signed with, so old signatures stay verifiable. A key is
    valid from `created_at` (when it was first published) until `valid_until` (rotated, or the
    moment it was compromised, `compromised_at`); it signs nothing after that."""

    __tablename__ = "signing_keys"

    keyid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    public_key_pem: Mapped[str] = mapped_column(Text)
    valid_until: Mapped[datetime | None]
    compromised_at: Mapped[datetime | None]


class AbTest(UuidPrimaryKey, CreatedAt, UpdatedAt, Base):
    """An experiment between versions of one model. At most one runs per model at a time."""

    __tablename__ = "ab_tests"
    __table_args__ = (
        Index(
            "uq_ab_tests_running_model",
            "model_id",
            unique=True,
            postgresql_where=text("status = 'running'"),
            sqlite_where=text("status = 'running'"),
        ),
    )

    name: Mapped[str] = mapped_column(String(128))
    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ml_models.id", ondelete="CASCADE"))
    status: Mapped[AbTestStatus] = mapped_column(Word(AbTestStatus, 16))
    unit: Mapped[str] = mapped_column(String(64))
    metric_name: Mapped[str] = mapped_column(String(250))
    metric_kind: Mapped[MetricKind] = mapped_column(Word(MetricKind, 16))
    metric_direction: Mapped[MetricDirection] = mapped_column(Word(MetricDirection, 20))
    minimum_sample_size: Mapped[int]
    confidence_level: Mapped[float] = mapped_column(Float)
    ends_at: Mapped[datetime | None]
    webhook_url: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]
    winner: Mapped[str | None] = mapped_column(String(64))
    last_verdict: Mapped[Verdict | None] = mapped_column(Word(Verdict, 32))


class AbVariant(Base):
    """A variant and its running totals: sufficient statistics, updated in place."""

    __tablename__ = "ab_variants"
    __table_args__ = (UniqueConstraint("test_id", "name"),)

    test_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ab_tests.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int | None]
    alias: Mapped[str | None] = mapped_column(String(64))
    weight: Mapped[float] = mapped_column(Float)
    exposures: Mapped[int] = mapped_column(default=0)
    n: Mapped[int] = mapped_column(default=0)
    total: Mapped[float] = mapped_column(Float, default=0.0)
    total_sq: Mapped[float] = mapped_column(Float, default=0.0)


class AbExposure(Base):
    """Units that saw the test, once each: exact distinct exposure counts for the SRM check."""

    __tablename__ = "ab_exposures"

    test_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ab_tests.id", ondelete="CASCADE"), primary_key=True
    )
    unit_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    position: Mapped[int]
