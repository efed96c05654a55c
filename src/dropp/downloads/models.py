"""One row per download URL issued, whoever it was issued to."""

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from sqlalchemy import BigInteger, CheckConstraint, Identity, Index, LargeBinary, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from dropp.core.db import Base, EnumText, created_at_column


class Channel(StrEnum):
    """Through what the URL was issued."""

    OWNER = "owner"
    LINK = "link"
    SHARE = "share"


class Download(Base):
    __tablename__ = "download"
    __table_args__ = (
        Index("ix_download_node", "node_id"),
        Index("ix_download_link", "link_id", postgresql_where="link_id IS NOT NULL"),
        Index("ix_download_created", "created_at"),
        CheckConstraint("channel IN ('owner', 'link', 'share')", name="channel"),
        # Someone is always named: an account, or for an anonymous link the salted IP hash.
        CheckConstraint("user_id IS NOT NULL OR ip_hash IS NOT NULL", name="who"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    # No foreign keys: the history outlives the files, links and accounts it names, so the
    # daily figures stay what they were.
    owner_id: Mapped[UUID] = mapped_column(Uuid, index=True)
    node_id: Mapped[UUID] = mapped_column(Uuid)
    revision_id: Mapped[UUID] = mapped_column(Uuid)
    channel: Mapped[Channel] = mapped_column(EnumText(Channel))
    link_id: Mapped[UUID | None] = mapped_column(Uuid)
    grant_id: Mapped[UUID | None] = mapped_column(Uuid)
    user_id: Mapped[UUID | None] = mapped_column(Uuid)
    ip_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = created_at_column()
