"""Large files and lifecycle: multipart uploads, part checksums, quotas, idempotency keys,
file expiry.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _bytes_counter(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)


def upgrade() -> None:
    op.add_column("user_account", sa.Column("quota_bytes", sa.BigInteger(), nullable=True))
    op.add_column("user_account", _bytes_counter("used_bytes"))
    # Accounts that already stored files start with their real usage.
    op.execute(
        """
        UPDATE user_account AS u SET
          used_bytes = coalesce((
            SELECT sum(r.size) FROM file_revision r JOIN node n ON n.id = r.node_id
            WHERE n.owner_id = u.id AND r.state = 'complete'), 0)
        """
    )

    op.add_column("node", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_node_expires_at"), "node", ["expires_at"])

    op.add_column("file_revision", sa.Column("multipart_upload_id", sa.Text(), nullable=True))
    op.add_column("file_revision", sa.Column("part_size", sa.BigInteger(), nullable=True))
    op.add_column("file_revision", _bytes_counter("reserved_bytes"))
    op.create_index(
        "ix_file_revision_pending_expiry",
        "file_revision",
        ["upload_expires_at"],
        postgresql_where="state = 'pending'",
    )

    op.create_table(
        "upload_part",
        sa.Column("revision_id", sa.Uuid(), nullable=False),
        sa.Column("part_number", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.LargeBinary(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["file_revision.id"],
            name=op.f("fk_upload_part_revision_id_file_revision"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("revision_id", "part_number", name=op.f("pk_upload_part")),
    )

    op.create_table(
        "idempotency_key",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_idempotency_key_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_key")),
    )
    op.create_index(op.f("ix_idempotency_key_expires_at"), "idempotency_key", ["expires_at"])


def downgrade() -> None:
    op.drop_table("idempotency_key")
    op.drop_table("upload_part")
    op.drop_index("ix_file_revision_pending_expiry", table_name="file_revision")
    op.drop_column("file_revision", "reserved_bytes")
    op.drop_column("file_revision", "part_size")
    op.drop_column("file_revision", "multipart_upload_id")
    op.drop_index(op.f("ix_node_expires_at"), table_name="node")
    op.drop_column("node", "expires_at")
    op.drop_column("user_account", "used_bytes")
    op.drop_column("user_account", "quota_bytes")
