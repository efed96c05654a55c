"""The current revision's size on its node, for listings sorted by size.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("node", sa.Column("size", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE node SET size = file_revision.size FROM file_revision"
        " WHERE file_revision.id = node.current_revision_id"
    )


def downgrade() -> None:
    op.drop_column("node", "size")
