"""deltaone, attestations, signing keys

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("keyid", sa.String(length=64), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("public_key_pem", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("keyid", name=op.f("pk_signing_keys")),
    )
    op.create_table(
        "attestations",
        sa.Column("id", sa.String(length=71), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("previous_id", sa.String(length=71), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("envelope", sa.JSON(), nullable=False),
        sa.Column("eip712", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["ml_models.id"], name=op.f("fk_attestations_model_id_ml_models")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_attestations_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attestations")),
        sa.UniqueConstraint("version_id", name=op.f("uq_attestations_version_id")),
    )
    op.create_index(op.f("ix_attestations_model_id"), "attestations", ["model_id"], unique=False)
    op.add_column("model_versions", sa.Column("deltaone", sa.JSON(), nullable=True))
    op.add_column("model_versions", sa.Column("deltaone_accepted", sa.Boolean(), nullable=True))
    op.add_column(
        "model_versions", sa.Column("deltaone_reason", sa.String(length=40), nullable=True)
    )
    op.add_column(
        "model_versions",
        sa.Column("deltaone_gain_pp", sa.Numeric(precision=24, scale=6), nullable=True),
    )
    op.add_column(
        "model_versions", sa.Column("attestation_id", sa.String(length=71), nullable=True)
    )
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("root_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_model_versions_root_id_model_versions"), "model_versions", ["root_id"], ["id"]
        )
    op.create_index(
        op.f("ix_model_versions_model_id"),
        "model_versions",
        ["model_id", "dataset_hash", "deltaone_accepted"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_model_versions_model_id"), table_name="model_versions")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_constraint(op.f("fk_model_versions_root_id_model_versions"), type_="foreignkey")
        batch.drop_column("root_id")
    op.drop_column("model_versions", "attestation_id")
    op.drop_column("model_versions", "deltaone_gain_pp")
    op.drop_column("model_versions", "deltaone_reason")
    op.drop_column("model_versions", "deltaone_accepted")
    op.drop_column("model_versions", "deltaone")
    op.drop_index(op.f("ix_attestations_model_id"), table_name="attestations")
    op.drop_table("attestations")
    op.drop_table("signing_keys")
