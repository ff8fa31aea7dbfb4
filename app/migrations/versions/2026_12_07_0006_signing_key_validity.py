"""signing keys gain a validity period: rotated (valid until) or compromised (since when)

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


def upgrade() -> None:
    op.add_column("signing_keys", sa.Column("valid_until", sa.DateTime(timezone=True)))
    op.add_column("signing_keys", sa.Column("compromised_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("signing_keys", "compromised_at")
    op.drop_column("signing_keys", "valid_until")
