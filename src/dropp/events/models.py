from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, ForeignKey, Identity, Index, PrimaryKeyConstraint, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from dropp.core.db import Base, created_at_column


class EventKind(StrEnum):
    UPLOAD = "upload"
    SHARE = "share"
    TRANSFER = "transfer"


class AccountEvent(Base):
    """Something that happened to an account besides its tree: an upload changing state, a
    share received, a transfer moving on. Kept `EVENTS_KEEP_HOURS` for streams that resume.

    Keyed like the change feed, (user_id, id): every read is one account's, newest last.
    """

    __tablename__ = "account_event"
    __table_args__ = (
        PrimaryKeyConstraint("user_id", "id"),
        Index("ix_account_event_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at_column()
