"""Sharing and tracking: share links, shares with people, file requests, downloads.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _created_at(name: str = "created_at") -> sa.Column[object]:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def _owned(table: str, node_column: str) -> list[sa.ForeignKeyConstraint]:
    return [
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["user_account.id"],
            name=op.f(f"fk_{table}_owner_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            [node_column],
            ["node.id"],
            name=op.f(f"fk_{table}_{node_column}_node"),
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "share_link",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("node_id", sa.Uuid(), nullable=False),
        sa.Column("token_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_downloads", sa.BigInteger(), nullable=True),
        sa.Column("downloads_used", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        _created_at(),
        sa.CheckConstraint(
            "max_downloads IS NULL OR downloads_used <= max_downloads",
            name=op.f("ck_share_link_download_limit"),
        ),
        *_owned("share_link", "node_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_share_link")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_share_link_token_digest")),
    )
    op.create_index("ix_share_link_owner_created", "share_link", ["owner_id", "created_at", "id"])
    op.create_index(op.f("ix_share_link_node_id"), "share_link", ["node_id"])

    op.create_table(
        "share_grant",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("node_id", sa.Uuid(), nullable=False),
        sa.Column("grantee_email", sa.String(length=320), nullable=True),
        sa.Column("grantee_role", sa.String(length=63), nullable=True),
        sa.Column("permission", sa.String(length=16), nullable=False),
        _created_at(),
        _created_at("updated_at"),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "(grantee_email IS NULL) <> (grantee_role IS NULL)",
            name=op.f("ck_share_grant_one_grantee"),
        ),
        sa.CheckConstraint(
            "permission IN ('viewer', 'editor')", name=op.f("ck_share_grant_permission")
        ),
        *_owned("share_grant", "node_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_share_grant")),
    )
    op.create_index(
        "uq_share_grant_email",
        "share_grant",
        ["node_id", "grantee_email"],
        unique=True,
        postgresql_where=sa.text("grantee_email IS NOT NULL"),
    )
    op.create_index(
        "uq_share_grant_role",
        "share_grant",
        ["node_id", "grantee_role"],
        unique=True,
        postgresql_where=sa.text("grantee_role IS NOT NULL"),
    )
    op.create_index("ix_share_grant_email", "share_grant", ["grantee_email"])
    op.create_index("ix_share_grant_role", "share_grant", ["grantee_role"])
    op.create_index("ix_share_grant_owner", "share_grant", ["owner_id", "created_at", "id"])

    op.create_table(
        "file_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("folder_id", sa.Uuid(), nullable=False),
        sa.Column("token_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_file_bytes", sa.BigInteger(), nullable=True),
        sa.Column("max_uploads", sa.BigInteger(), nullable=True),
        sa.Column("uploads_used", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        _created_at(),
        sa.CheckConstraint(
            "max_uploads IS NULL OR uploads_used <= max_uploads",
            name=op.f("ck_file_request_upload_limit"),
        ),
        *_owned("file_request", "folder_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_file_request")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_file_request_token_digest")),
    )
    op.create_index(
        "ix_file_request_owner_created", "file_request", ["owner_id", "created_at", "id"]
    )
    op.create_index(op.f("ix_file_request_folder_id"), "file_request", ["folder_id"])

    op.add_column("file_revision", sa.Column("uploaded_by", sa.Uuid(), nullable=True))
    op.add_column("file_revision", sa.Column("file_request_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_file_revision_file_request_id_file_request"),
        "file_revision",
        "file_request",
        ["file_request_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_index(op.f("ix_file_revision_file_request_id"), "file_revision", ["file_request_id"])
    op.add_column("change", sa.Column("grant_id", sa.Uuid(), nullable=True))
    op.create_index(op.f("ix_user_account_role"), "user_account", ["role"])

    op.create_table(
        "download",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("node_id", sa.Uuid(), nullable=False),
        sa.Column("revision_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("link_id", sa.Uuid(), nullable=True),
        sa.Column("grant_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("ip_hash", sa.LargeBinary(length=32), nullable=True),
        _created_at(),
        sa.CheckConstraint(
            "channel IN ('owner', 'link', 'share')", name=op.f("ck_download_channel")
        ),
        sa.CheckConstraint(
            "user_id IS NOT NULL OR ip_hash IS NOT NULL", name=op.f("ck_download_who")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_download")),
    )
    op.create_index("ix_download_node", "download", ["node_id"])
    op.create_index(
        "ix_download_link",
        "download",
        ["link_id"],
        postgresql_where=sa.text("link_id IS NOT NULL"),
    )
    op.create_index("ix_download_created", "download", ["created_at"])
    op.create_index(op.f("ix_download_owner_id"), "download", ["owner_id"])


def downgrade() -> None:
    op.drop_table("download")
    op.drop_index(op.f("ix_user_account_role"), table_name="user_account")
    op.drop_column("change", "grant_id")
    op.drop_index(op.f("ix_file_revision_file_request_id"), table_name="file_revision")
    op.drop_constraint(
        op.f("fk_file_revision_file_request_id_file_request"), "file_revision", type_="foreignkey"
    )
    op.drop_column("file_revision", "file_request_id")
    op.drop_column("file_revision", "uploaded_by")
    op.drop_table("file_request")
    op.drop_table("share_grant")
    op.drop_table("share_link")
