"""Initial schema: accounts, refresh tokens, the file tree and file revisions.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _created_at(name: str = "created_at") -> sa.Column[object]:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "user_account",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_account")),
        sa.UniqueConstraint("email", name=op.f("uq_user_account_email")),
    )
    op.create_table(
        "refresh_token",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        _created_at(),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_refresh_token_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_token_token_hash")),
    )
    op.create_index(op.f("ix_refresh_token_family_id"), "refresh_token", ["family_id"])
    op.create_table(
        "node",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("current_revision_id", sa.Uuid(), nullable=True),
        _created_at(),
        _created_at("updated_at"),
        sa.CheckConstraint("kind IN ('folder', 'file')", name=op.f("ck_node_kind")),
        sa.CheckConstraint("name IS NFC NORMALIZED", name=op.f("ck_node_name_nfc")),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["user_account.id"],
            name=op.f("fk_node_owner_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["node.id"], name=op.f("fk_node_parent_id_node"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node")),
    )
    op.create_index("ix_node_owner_created", "node", ["owner_id", "created_at", "id"])
    op.create_index(
        "uq_node_child_name",
        "node",
        ["parent_id", "name"],
        unique=True,
        postgresql_where="parent_id IS NOT NULL",
    )
    op.create_index(
        "uq_node_top_level_name",
        "node",
        ["owner_id", "name"],
        unique=True,
        postgresql_where="parent_id IS NULL",
    )
    op.create_table(
        "file_revision",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("node_id", sa.Uuid(), nullable=False),
        sa.Column("storage_key", sa.Text(), nullable=False),
        sa.Column("declared_size", sa.BigInteger(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("sha256", sa.LargeBinary(length=32), nullable=True),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("version_id", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        _created_at(),
        sa.Column("upload_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'complete', 'failed', 'expired')",
            name=op.f("ck_file_revision_state"),
        ),
        sa.ForeignKeyConstraint(
            ["node_id"], ["node.id"], name=op.f("fk_file_revision_node_id_node"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_file_revision")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_file_revision_storage_key")),
    )
    op.create_index("ix_file_revision_node_created", "file_revision", ["node_id", "created_at"])
    # node and file_revision point at each other; this side is added once both exist.
    op.create_foreign_key(
        op.f("fk_node_current_revision_id_file_revision"),
        "node",
        "file_revision",
        ["current_revision_id"],
        ["id"],
        ondelete="SET NULL",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("fk_node_current_revision_id_file_revision"), "node", type_="foreignkey"
    )
    op.drop_table("file_revision")
    op.drop_table("node")
    op.drop_table("refresh_token")
    op.drop_table("user_account")
