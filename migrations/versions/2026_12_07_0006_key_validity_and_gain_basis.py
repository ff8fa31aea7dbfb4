"""signing keys gain a validity period: rotated (valid until) or compromised (since when);
versions and contributions say how their gain was obtained (measured or claimed); gains of any
size are stored (a gain in percent of a parent of 1e-300 overflowed NUMERIC(24,6))

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
GAINS = (("model_versions", "deltaone_gain_pp"), ("version_contributors", "gain_pp"))


def upgrade() -> None:
    op.add_column("signing_keys", sa.Column("valid_until", sa.DateTime(timezone=True)))
    op.add_column("signing_keys", sa.Column("compromised_at", sa.DateTime(timezone=True)))
    if op.get_bind().dialect.name == "postgresql":  # SQLite's NUMERIC has no size to widen
        for table, column in (
            ("model_versions", "deltaone_gain_pp"),
            ("version_contributors", "gain_pp"),
        ):
            op.alter_column(table, column, type_=sa.Numeric(), existing_type=sa.Numeric(24, 6))
    op.add_column("model_versions", sa.Column("deltaone_basis", sa.String(length=16)))
    op.add_column("version_contributors", sa.Column("basis", sa.String(length=16)))
    # Judged versions before this revision: measured when their decision says so, else claimed.
    op.execute(
        "UPDATE model_versions SET deltaone_basis = CASE WHEN deltaone ->> 'basis' = 'measured' "
        "THEN 'measured' ELSE 'claimed' END WHERE deltaone IS NOT NULL"
    )
    op.execute(
        "UPDATE version_contributors SET basis = (SELECT deltaone_basis FROM model_versions "
        "WHERE model_versions.id = version_contributors.version_id)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column in (
            ("model_versions", "deltaone_gain_pp"),
            ("version_contributors", "gain_pp"),
        ):
            op.alter_column(table, column, type_=sa.Numeric(24, 6), existing_type=sa.Numeric())
    op.drop_column("version_contributors", "basis")
    op.drop_column("model_versions", "deltaone_basis")
    op.drop_column("signing_keys", "compromised_at")
    op.drop_column("signing_keys", "valid_until")
