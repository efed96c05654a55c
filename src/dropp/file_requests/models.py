"""File requests: an upload-only link into one of the owner's folders."""

from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, LargeBinary, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from dropp.core.db import Base, created_at_column


class FileRequest(Base):
    __tablename__ = "file_request"
    __table_args__ = (
        Index("ix_file_request_owner_created", "owner_id", "created_at", "id"),
        CheckConstraint("max_uploads IS NULL OR uploads_used <= max_uploads", name="upload_limit"),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    owner_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    folder_id: Mapped[UUID] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the token, which is shown once.
    token_digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    title: Mapped[str] = mapped_column(Text)
    deadline: Mapped[datetime | None]
    max_file_bytes: Mapped[int | None] = mapped_column(BigInteger)
    max_uploads: Mapped[int | None] = mapped_column(BigInteger)
    uploads_used: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at_column()
