"""The change feed keyed by (user_id, id); pruning by age through its own index.

With a primary key on `id` alone, PostgreSQL could answer a user's newest change by scanning
that key backward past every other user's newer changes: 17 ms for an account whose changes
were older than 100,000 others', and growing with them. Every per-user read of the feed now
has only the per-user key to use.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("pk_change", "change", type_="primary")
    op.create_primary_key("pk_change", "change", ["user_id", "id"])
    op.drop_index("ix_change_user_id_id", table_name="change")
    op.create_index("ix_change_created_at", "change", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_change_created_at", table_name="change")
    op.create_index("ix_change_user_id_id", "change", ["user_id", "id"])
    op.drop_constraint("pk_change", "change", type_="primary")
    op.create_primary_key("pk_change", "change", ["id"])
