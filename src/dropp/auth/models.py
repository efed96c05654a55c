from datetime import datetime
from enum import StrEnum
from uuid import UUID, uuid4

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from dropp.core.db import Base, EnumText, created_at_column

# Every secret handed to a client or a browser (refresh tokens, codes, session cookies, email
# links) is stored as its SHA-256 only, so a leaked database leaks no usable secret.
Digest = LargeBinary(32)


class User(Base):
    __tablename__ = "user_account"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    # Stored normalized (see auth.service.normalize_email), so equality is a plain comparison.
    # None for an account from a provider whose email another account already holds.
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    email_verified_at: Mapped[datetime | None]
    # None for accounts that only sign in through a provider.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # Indexed: a change under a folder shared with a role looks up that role's accounts.
    role: Mapped[str] = mapped_column(
        String(63), default="member", server_default="member", index=True
    )
    # Storage quota: None means DEFAULT_QUOTA_BYTES applies.
    quota_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # Bytes of every complete revision kept, moved by atomic UPDATEs as revisions complete
    # and go; what pending uploads hold is on their revisions (see quotas.service).
    used_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The newest change id pruned from this user's feed: an older cursor cannot be served.
    changes_pruned_through: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    is_active: Mapped[bool] = mapped_column(default=True, server_default="true")
    created_at: Mapped[datetime] = created_at_column()


class Identity(Base):
    """An account at an OpenID Connect provider, keyed on (issuer, subject), never on email."""

    __tablename__ = "identity"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    user_id: Mapped[UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    # As the provider last reported it; informational only.
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = created_at_column()


class RefreshToken(Base):
    """One refresh token of a rotation family; only its SHA-256 is kept."""

    __tablename__ = "refresh_token"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    family_id: Mapped[UUID] = mapped_column(Uuid, index=True)
    token_hash: Mapped[bytes] = mapped_column(Digest, unique=True)
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class WebSession(Base):
    """A browser signed in to Dropp's own pages (approving a device, confirming a sign-in)."""

    __tablename__ = "web_session"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    user_id: Mapped[UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(Digest, unique=True)
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class SignIn(Base):
    """One sign-in through the OpenID provider, from `/auth/google` to the client's redirect.

    Bound to the browser that started it by a cookie, single use, and short-lived.
    """

    __tablename__ = "sign_in"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    state_hash: Mapped[bytes] = mapped_column(Digest, unique=True)
    browser_hash: Mapped[bytes] = mapped_column(Digest)
    nonce: Mapped[str] = mapped_column(String(64))
    provider_code_verifier: Mapped[str] = mapped_column(String(128))
    # The client's request; all None when a person signs in to Dropp's own pages.
    client_redirect_uri: Mapped[str | None] = mapped_column(String(2048))
    client_state: Mapped[str | None] = mapped_column(String(1024))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    # Where a person signing in to Dropp's pages goes afterwards (a path on this server).
    next_path: Mapped[str | None] = mapped_column(String(2048))
    # Set by the callback: who signed in, waiting for the person's confirmation.
    user_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime]
    returned_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]


class AuthorizationCode(Base):
    """A one-time code for `/auth/token`, bound to a redirect URI and a PKCE challenge."""

    __tablename__ = "authorization_code"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    code_hash: Mapped[bytes] = mapped_column(Digest, unique=True)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    code_challenge: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    # The refresh-token family the code was redeemed for: a replay revokes it.
    family_id: Mapped[UUID | None] = mapped_column(Uuid)


class DeviceStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    REDEEMED = "redeemed"


class DeviceAuthorization(Base):
    """RFC 8628: a device polls with `device_code` while a person approves `user_code`."""

    __tablename__ = "device_authorization"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    device_code_hash: Mapped[bytes] = mapped_column(Digest, unique=True)
    user_code_hash: Mapped[bytes] = mapped_column(Digest, unique=True)
    status: Mapped[DeviceStatus] = mapped_column(
        EnumText(DeviceStatus), default=DeviceStatus.PENDING
    )
    user_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    interval_seconds: Mapped[int]
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime]
    last_polled_at: Mapped[datetime | None]


class EmailTokenPurpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"


class EmailToken(Base):
    """A single-use link sent by email: verify an address, or reset a password."""

    __tablename__ = "email_token"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    token_hash: Mapped[bytes] = mapped_column(Digest, unique=True)
    user_id: Mapped[UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[EmailTokenPurpose] = mapped_column(EnumText(EmailTokenPurpose))
    # The address the link was sent to: verifying proves this one, not a later one.
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
