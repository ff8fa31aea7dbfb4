"""a version keeps the input signature its MLmodel file declares (shown to users, and the
columns a row must have)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("model_versions", sa.Column("input_signature", sa.JSON()))


def downgrade() -> None:
    op.drop_column("model_versions", "input_signature")
