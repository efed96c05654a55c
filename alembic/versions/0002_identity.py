"""Identity: provider accounts, web sessions, sign-ins, authorization codes, device
authorizations, email links; roles and verified emails on accounts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _created_at() -> sa.Column[object]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def _timestamp(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _digest(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.LargeBinary(length=32), nullable=False)


def _user_fk(table: str, nullable: bool = False) -> tuple[sa.Column[object], sa.Constraint]:
    return (
        sa.Column("user_id", sa.Uuid(), nullable=nullable),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f(f"fk_{table}_user_id_user_account"),
            ondelete="CASCADE",
        ),
    )


def upgrade() -> None:
    op.alter_column("user_account", "email", existing_type=sa.String(320), nullable=True)
    op.alter_column("user_account", "password_hash", existing_type=sa.String(255), nullable=True)
    op.add_column("user_account", _timestamp("email_verified_at"))
    op.add_column(
        "user_account",
        sa.Column("role", sa.String(length=63), server_default="member", nullable=False),
    )

    op.create_table(
        "identity",
        sa.Column("id", sa.Uuid(), nullable=False),
        *_user_fk("identity"),
        sa.Column("issuer", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity")),
        sa.UniqueConstraint("issuer", "subject", name=op.f("uq_identity_issuer")),
    )
    op.create_index(op.f("ix_identity_user_id"), "identity", ["user_id"])

    op.create_table(
        "web_session",
        sa.Column("id", sa.Uuid(), nullable=False),
        *_user_fk("web_session"),
        _digest("token_hash"),
        _created_at(),
        _timestamp("expires_at", nullable=False),
        _timestamp("revoked_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_session")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_session_token_hash")),
    )
    op.create_index(op.f("ix_web_session_user_id"), "web_session", ["user_id"])

    op.create_table(
        "sign_in",
        sa.Column("id", sa.Uuid(), nullable=False),
        _digest("state_hash"),
        _digest("browser_hash"),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("provider_code_verifier", sa.String(length=128), nullable=False),
        sa.Column("client_redirect_uri", sa.String(length=2048), nullable=True),
        sa.Column("client_state", sa.String(length=1024), nullable=True),
        sa.Column("code_challenge", sa.String(length=128), nullable=True),
        sa.Column("next_path", sa.String(length=2048), nullable=True),
        *_user_fk("sign_in", nullable=True),
        _created_at(),
        _timestamp("expires_at", nullable=False),
        _timestamp("returned_at"),
        _timestamp("confirmed_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_sign_in_state_hash")),
    )

    op.create_table(
        "authorization_code",
        sa.Column("id", sa.Uuid(), nullable=False),
        _digest("code_hash"),
        *_user_fk("authorization_code"),
        sa.Column("redirect_uri", sa.String(length=2048), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        _created_at(),
        _timestamp("expires_at", nullable=False),
        _timestamp("used_at"),
        sa.Column("family_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authorization_code")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_authorization_code_code_hash")),
    )

    op.create_table(
        "device_authorization",
        sa.Column("id", sa.Uuid(), nullable=False),
        _digest("device_code_hash"),
        _digest("user_code_hash"),
        sa.Column("status", sa.String(length=16), nullable=False),
        *_user_fk("device_authorization", nullable=True),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        _created_at(),
        _timestamp("expires_at", nullable=False),
        _timestamp("last_polled_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_authorization")),
        sa.UniqueConstraint(
            "device_code_hash", name=op.f("uq_device_authorization_device_code_hash")
        ),
        sa.UniqueConstraint("user_code_hash", name=op.f("uq_device_authorization_user_code_hash")),
    )

    op.create_table(
        "email_token",
        sa.Column("id", sa.Uuid(), nullable=False),
        _digest("token_hash"),
        *_user_fk("email_token"),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        _created_at(),
        _timestamp("expires_at", nullable=False),
        _timestamp("used_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_email_token_token_hash")),
    )
    op.create_index(op.f("ix_email_token_user_id"), "email_token", ["user_id"])


def downgrade() -> None:
    for table in (
        "email_token",
        "device_authorization",
        "authorization_code",
        "sign_in",
        "web_session",
        "identity",
    ):
        op.drop_table(table)
    op.drop_column("user_account", "role")
    op.drop_column("user_account", "email_verified_at")
    # Accounts without a password or an email cannot be expressed by the older schema.
    op.execute("DELETE FROM user_account WHERE email IS NULL OR password_hash IS NULL")
    op.alter_column("user_account", "password_hash", existing_type=sa.String(255), nullable=False)
    op.alter_column("user_account", "email", existing_type=sa.String(320), nullable=False)
