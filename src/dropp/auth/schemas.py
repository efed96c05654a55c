from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from dropp.auth.models import User
from dropp.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from dropp.core.emails import EmailAddress
from dropp.core.schemas import RequestBody


class UserCreate(RequestBody):
    email: EmailAddress
    password: str = Field(min_length=8, max_length=1024)


class LoginRequest(RequestBody):
    # Not validated as an address: a malformed email simply matches no account.
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class PasswordChange(RequestBody):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(
        min_length=MIN_PASSWORD_LENGTH,
        max_length=MAX_PASSWORD_LENGTH,
        description=f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters.",
    )


class RefreshRequest(RequestBody):
    refresh_token: str = Field(min_length=1, max_length=200)


class TokenRead(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str


class UserRead(BaseModel):
    id: UUID
    # None for an account from a provider whose address another account already holds.
    email: str | None
    email_verified: bool
    role: str
    is_active: bool
    created_at: datetime
    # The account's own storage quota; None: DEFAULT_QUOTA_BYTES applies.
    quota_bytes: int | None = None

    @classmethod
    def of(cls, user: User) -> "UserRead":
        return cls(
            id=user.id,
            email=user.email,
            email_verified=user.email_verified_at is not None,
            role=user.role,
            is_active=user.is_active,
            created_at=user.created_at,
            quota_bytes=user.quota_bytes,
        )


class PasswordResetRequest(RequestBody):
    # Not validated as an address: a malformed email simply matches no account.
    email: str = Field(min_length=1, max_length=320)


class LinkSent(BaseModel):
    detail: str
