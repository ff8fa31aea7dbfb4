"""models, versions, contributors, aliases

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ml_models",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("model_type", sa.String(length=32), nullable=False),
        sa.Column("token_id", sa.String(length=64), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("benchmark_metric", sa.String(length=250), nullable=False),
        sa.Column("benchmark_direction", sa.String(length=20), nullable=False),
        sa.Column("benchmark_family", sa.String(length=20), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ml_models")),
        sa.UniqueConstraint("name", name=op.f("uq_ml_models_name")),
        sa.UniqueConstraint("token_id", name=op.f("uq_ml_models_token_id")),
    )
    op.create_index(op.f("ix_ml_models_model_type"), "ml_models", ["model_type"], unique=False)
    op.create_table(
        "alias_events",
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["ml_models.id"],
            name=op.f("fk_alias_events_model_id_ml_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alias_events")),
    )
    op.create_index(
        op.f("ix_alias_events_model_id"), "alias_events", ["model_id", "alias", "at"], unique=False
    )
    op.create_table(
        "model_versions",
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("metric_stds", sa.JSON(), nullable=False),
        sa.Column("dataset_hash", sa.String(length=71), nullable=False),
        sa.Column("dataset_num_samples", sa.Integer(), nullable=False),
        sa.Column("benchmark_metric", sa.String(length=250), nullable=False),
        sa.Column("benchmark_direction", sa.String(length=20), nullable=False),
        sa.Column("benchmark_family", sa.String(length=20), nullable=False),
        sa.Column("primary_metric_value", sa.Float(), nullable=True),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("delta", sa.JSON(), nullable=True),
        sa.Column("artifact_digest", sa.String(length=71), nullable=False),
        sa.Column("source_uri", sa.Text(), nullable=False),
        sa.Column("mlflow_run_id", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["ml_models.id"],
            name=op.f("fk_model_versions_model_id_ml_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["model_versions.id"],
            name=op.f("fk_model_versions_parent_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("model_id", "version", name=op.f("uq_model_versions_model_id")),
    )
    op.create_index(
        op.f("ix_model_versions_parent_id"), "model_versions", ["parent_id"], unique=False
    )
    op.create_table(
        "model_aliases",
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["ml_models.id"],
            name=op.f("fk_model_aliases_model_id_ml_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_aliases_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("model_id", "alias", name=op.f("pk_model_aliases")),
    )
    op.create_index(
        op.f("ix_model_aliases_version_id"), "model_aliases", ["version_id"], unique=False
    )
    op.create_table(
        "version_contributors",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("weight_bps", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("gain_pp", sa.Numeric(precision=24, scale=6), nullable=True),
        sa.Column("deltaone_accepted", sa.Boolean(), nullable=True),
        sa.Column("attestation_id", sa.String(length=71), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_version_contributors_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["ml_models.id"],
            name=op.f("fk_version_contributors_model_id_ml_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "address", name=op.f("pk_version_contributors")),
    )
    op.create_index(
        op.f("ix_version_contributors_address"),
        "version_contributors",
        ["address", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_version_contributors_address"), table_name="version_contributors")
    op.drop_table("version_contributors")
    op.drop_index(op.f("ix_model_aliases_version_id"), table_name="model_aliases")
    op.drop_table("model_aliases")
    op.drop_index(op.f("ix_model_versions_parent_id"), table_name="model_versions")
    op.drop_table("model_versions")
    op.drop_index(op.f("ix_alias_events_model_id"), table_name="alias_events")
    op.drop_table("alias_events")
    op.drop_index(op.f("ix_ml_models_model_type"), table_name="ml_models")
    op.drop_table("ml_models")
