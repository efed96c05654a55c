from datetime import datetime
from enum import StrEnum
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Identity,
    Index,
    PrimaryKeyConstraint,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from dropp.core.db import Base, EnumText, created_at_column


class ChangeKind(StrEnum):
    CREATED = "created"
    UPDATED = "updated"  # a new current revision
    MOVED = "moved"  # renamed or moved; a folder's subtree moves with it
    DELETED = "deleted"  # to the trash, or purged
    RESTORED = "restored"  # out of the trash


class Change(Base):
    """One entry of a user's change feed, written in the transaction that made the change.

    `id` orders every change; a feed cursor is the last id a client has seen. The key is
    (user_id, id): every read is one user's, and a key on `id` alone let PostgreSQL answer a
    user's newest change by scanning past everyone else's newer ones.
    """

    __tablename__ = "change"
    __table_args__ = (
        PrimaryKeyConstraint("user_id", "id"),
        # The sweeper prunes by age.
        Index("ix_change_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    node_id: Mapped[UUID] = mapped_column(Uuid)
    change: Mapped[ChangeKind] = mapped_column(EnumText(ChangeKind))
    node_kind: Mapped[str] = mapped_column(String(16))
    # The node's path after the change (before it, for a deletion).
    path: Mapped[str] = mapped_column(Text)
    revision_id: Mapped[UUID | None] = mapped_column(Uuid)
    size: Mapped[int | None] = mapped_column(BigInteger)
    content_hash: Mapped[str | None] = mapped_column(Text)
    # Set on a recipient's rows about someone else's node: the share it is seen through;
    # `path` then starts at the shared node (`/<shared name>/...`).
    grant_id: Mapped[UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = created_at_column()
