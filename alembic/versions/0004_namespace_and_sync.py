"""Namespace and sync: trash, devices on revisions, the change feed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNIQUE_NAMES = (
    ("uq_node_top_level_name", ["owner_id", "name"], "parent_id IS NULL"),
    ("uq_node_child_name", ["parent_id", "name"], "parent_id IS NOT NULL"),
)


def _unique_names(live_only: bool) -> None:
    for name, columns, where in UNIQUE_NAMES:
        op.drop_index(name, table_name="node")
        condition = f"{where} AND trashed_at IS NULL" if live_only else where
        op.create_index(name, "node", columns, unique=True, postgresql_where=sa.text(condition))


def upgrade() -> None:
    op.add_column("node", sa.Column("trashed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "node", sa.Column("trash_root", sa.Boolean(), server_default="false", nullable=False)
    )
    _unique_names(live_only=True)
    op.add_column("file_revision", sa.Column("device", sa.Text(), nullable=True))
    op.add_column("file_revision", sa.Column("base_revision_id", sa.Uuid(), nullable=True))
    op.add_column("file_revision", sa.Column("conflict_mode", sa.String(length=16), nullable=True))
    op.add_column(
        "user_account",
        sa.Column("changes_pruned_through", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.create_table(
        "change",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("node_id", sa.Uuid(), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("node_kind", sa.String(length=16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("revision_id", sa.Uuid(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("content_hash", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_change_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change")),
    )
    op.create_index("ix_change_user_id_id", "change", ["user_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_change_user_id_id", table_name="change")
    op.drop_table("change")
    op.drop_column("user_account", "changes_pruned_through")
    op.drop_column("file_revision", "conflict_mode")
    op.drop_column("file_revision", "base_revision_id")
    op.drop_column("file_revision", "device")
    # Trashed nodes go: the older schema cannot tell them from live ones.
    op.execute("DELETE FROM node WHERE trashed_at IS NOT NULL")
    _unique_names(live_only=False)
    op.drop_column("node", "trash_root")
    op.drop_column("node", "trashed_at")
