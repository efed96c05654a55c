"""Live events and peer-to-peer transfers: account events kept for streams that resume,
transfers with their codes' digests, and the signaling messages between their peers.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _created_at() -> sa.Column[object]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "account_event",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("body", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _created_at(),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_account_event_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "id", name=op.f("pk_account_event")),
    )
    op.create_index("ix_account_event_created_at", "account_event", ["created_at"])

    op.create_table(
        "p2p_transfer",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sender_id", sa.Uuid(), nullable=False),
        sa.Column("code_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("file_size", sa.BigInteger(), nullable=False),
        sa.Column("file_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=True),
        sa.Column("bytes_done", sa.BigInteger(), server_default="0", nullable=False),
        _created_at(),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["sender_id"],
            ["user_account.id"],
            name=op.f("fk_p2p_transfer_sender_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_p2p_transfer")),
        sa.UniqueConstraint("code_digest", name=op.f("uq_p2p_transfer_code_digest")),
    )
    op.create_index("ix_p2p_transfer_sender_state", "p2p_transfer", ["sender_id", "state"])
    op.create_index("ix_p2p_transfer_expires_at", "p2p_transfer", ["expires_at"])

    op.create_table(
        "p2p_message",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("transfer_id", sa.Uuid(), nullable=False),
        sa.Column("to_peer", sa.String(length=8), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _created_at(),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["p2p_transfer.id"],
            name=op.f("fk_p2p_message_transfer_id_p2p_transfer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_p2p_message")),
    )
    op.create_index(
        "ix_p2p_message_transfer_id_to", "p2p_message", ["transfer_id", "to_peer", "id"]
    )


def downgrade() -> None:
    op.drop_table("p2p_message")
    op.drop_table("p2p_transfer")
    op.drop_table("account_event")
