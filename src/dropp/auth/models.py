from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import ForeignKey, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from dropp.core.db import Base, created_at_column


class User(Base):
    __tablename__ = "user_account"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    # Stored normalized (see auth.service.normalize_email), so equality is a plain comparison.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True, server_default="true")
    created_at: Mapped[datetime] = created_at_column()


class RefreshToken(Base):
    """One refresh token of a rotation family; only its SHA-256 is kept."""

    __tablename__ = "refresh_token"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    family_id: Mapped[UUID] = mapped_column(Uuid, index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
