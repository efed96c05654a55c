"""Share links (anyone holding the token) and shares with people (an address or a role)."""

from datetime import datetime
from enum import StrEnum
from uuid import UUID, uuid4

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from dropp.core.db import Base, EnumText, created_at_column


class Permission(StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"


class ShareLink(Base):
    """A link to a file or a folder for anyone who holds its token."""

    __tablename__ = "share_link"
    __table_args__ = (
        Index("ix_share_link_owner_created", "owner_id", "created_at", "id"),
        # Issued downloads never pass the limit: the issuing UPDATE is guarded by it, and
        # the database refuses anything else.
        CheckConstraint(
            "max_downloads IS NULL OR downloads_used <= max_downloads", name="download_limit"
        ),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    owner_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    node_id: Mapped[UUID] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the token: the token itself is shown once, when the link is made.
    token_digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    expires_at: Mapped[datetime | None]
    max_downloads: Mapped[int | None] = mapped_column(BigInteger)
    downloads_used: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at_column()


class ShareGrant(Base):
    """Access to a node and everything under it, for the account with a verified address or
    for every verified account with a role."""

    __tablename__ = "share_grant"
    __table_args__ = (
        CheckConstraint("(grantee_email IS NULL) <> (grantee_role IS NULL)", name="one_grantee"),
        CheckConstraint("permission IN ('viewer', 'editor')", name="permission"),
        Index(
            "uq_share_grant_email",
            "node_id",
            "grantee_email",
            unique=True,
            postgresql_where="grantee_email IS NOT NULL",
        ),
        Index(
            "uq_share_grant_role",
            "node_id",
            "grantee_role",
            unique=True,
            postgresql_where="grantee_role IS NOT NULL",
        ),
        Index("ix_share_grant_email", "grantee_email"),
        Index("ix_share_grant_role", "grantee_role"),
        Index("ix_share_grant_owner", "owner_id", "created_at", "id"),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    owner_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    node_id: Mapped[UUID] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"))
    # Normalized like user_account.email; matched only once that address is verified, so a
    # share to an address nobody holds yet waits for its owner, and reveals nothing.
    grantee_email: Mapped[str | None] = mapped_column(String(320))
    grantee_role: Mapped[str | None] = mapped_column(String(63))
    permission: Mapped[Permission] = mapped_column(EnumText(Permission))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()
    # Shown to the grantee: why the share exists, as the owner put it.
    note: Mapped[str | None] = mapped_column(Text)
