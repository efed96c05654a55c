"""Single-use links sent by email: proving an address, and resetting a forgotten password."""

import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dropp.auth import passwords
from dropp.auth import service as auth_service
from dropp.auth.errors import (
    EmailAlreadyVerified,
    EmailLinkGone,
    EmailLinkNotFound,
    InvalidEmailLink,
    InvalidToken,
    NoEmailAddress,
)
from dropp.auth.models import EmailToken, EmailTokenPurpose, User
from dropp.auth.tokens import new_secret, secret_digest
from dropp.core.config import Settings
from dropp.mail.sender import Mail, Mailer, MailNotSent

logger = logging.getLogger(__name__)

# Anything longer was not issued here; it is refused before it is hashed.
MAX_TOKEN_LENGTH = 128
MIN_PASSWORD_LENGTH = passwords.MIN_PASSWORD_LENGTH
MAX_PASSWORD_LENGTH = passwords.MAX_PASSWORD_LENGTH

VERIFY_PATH = "/auth/verify-email"
RESET_PATH = "/auth/password-reset/confirm"

INVALID_LINK = "This link is invalid, has expired, or was already used."
UNKNOWN_LINK = "This link is not one Dropp sent. Check that it was copied whole."
USED_LINK = "This link was already used."
EXPIRED_LINK = "This link has expired."
DAMAGED_LINK = "This link is incomplete. Open it again from the email, or copy all of it."


def _link(settings: Settings, path: str, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}{path}?{urlencode({'token': token})}"


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    minutes = max(1, seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


async def _issue(
    session: AsyncSession, user_id: UUID, email: str, purpose: EmailTokenPurpose, ttl: int
) -> str:
    token = new_secret()
    session.add(
        EmailToken(
            token_hash=secret_digest(token),
            user_id=user_id,
            purpose=purpose,
            email=email,
            expires_at=datetime.now(UTC) + timedelta(seconds=ttl),
        )
    )
    await session.flush()
    return token


async def _redeemable(
    session: AsyncSession, token: str, purpose: EmailTokenPurpose, *, lock: bool
) -> tuple[EmailToken, User]:
    """The link and its account, if the link may still be used. Otherwise EmailLinkNotFound
    when no link has this token, EmailLinkGone when it was sent and can no longer be used.

    With `lock`, both rows stay locked until the transaction ends, so a link clicked twice at
    once is used once.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidEmailLink(DAMAGED_LINK)
    query = select(EmailToken).where(
        EmailToken.token_hash == secret_digest(token), EmailToken.purpose == purpose
    )
    link = await session.scalar(query.with_for_update() if lock else query)
    if link is None:
        raise EmailLinkNotFound(UNKNOWN_LINK)
    if link.used_at is not None:
        raise EmailLinkGone(USED_LINK)
    if link.expires_at <= datetime.now(UTC):
        raise EmailLinkGone(EXPIRED_LINK)
    user = await session.get(User, link.user_id, with_for_update=lock)
    if user is None or not user.is_active:
        raise EmailLinkGone(INVALID_LINK)
    # The link proves control of the address it was sent to, and of no other.
    if user.email != link.email:
        raise EmailLinkGone(
            "This link was sent to an address the account no longer uses. Ask for a new one."
        )
    return link, user


async def deliver(mailer: Mailer, mail: Mail) -> bool:
    """Send `mail`; a failure is logged, not raised, and the person can ask again."""
    try:
        await mailer.send(mail)
    except MailNotSent as error:
        logger.error("could not send %r: %s", mail.subject, error)
        return False
    return True


# --- Verifying an address ---


async def issue_verification(
    session: AsyncSession, user_id: UUID, email: str, settings: Settings
) -> Mail:
    """A new verification link for `email`, stored; the mail that carries it, to send."""
    ttl = settings.email_verification_ttl_seconds
    token = await _issue(session, user_id, email, EmailTokenPurpose.VERIFY_EMAIL, ttl)
    link = _link(settings, VERIFY_PATH, token)
    text = (
        "Hello,\n\n"
        "Someone, hopefully you, created a Dropp account with this address. To confirm that "
        f"the address is yours, open this link within {_duration(ttl)}:\n\n"
        f"{link}\n\n"
        "If you did not create an account, ignore this message.\n"
    )
    return Mail(to=email, subject="Confirm your email address for Dropp", text=text, link=link)


async def resend_verification(session: AsyncSession, user_id: UUID, settings: Settings) -> Mail:
    """A new verification link for the account's current address, unless already verified."""
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise InvalidToken("The account behind this token no longer exists.")
    if user.email_verified_at is not None:
        raise EmailAlreadyVerified("This account's email address is already verified.")
    if user.email is None:
        raise NoEmailAddress("This account has no email address to verify.")
    return await issue_verification(session, user.id, user.email, settings)


async def check_verification(session: AsyncSession, token: str) -> str:
    """The address a verification link would verify; nothing is changed."""
    link, _ = await _redeemable(session, token, EmailTokenPurpose.VERIFY_EMAIL, lock=False)
    return link.email


async def verify_email(session: AsyncSession, token: str) -> User:
    """Mark the account's address verified and the link used."""
    link, user = await _redeemable(session, token, EmailTokenPurpose.VERIFY_EMAIL, lock=True)
    now = datetime.now(UTC)
    link.used_at = now
    if user.email_verified_at is None:
        user.email_verified_at = now
    await session.flush()
    return user


# --- Resetting a password ---


async def issue_password_reset(
    session: AsyncSession, email: str, settings: Settings
) -> Mail | None:
    """A reset link for the account using `email`, if there is one that may reset; else None.

    An account that only signs in through a provider and never proved its address gets none
    (see `_may_reset`).
    """
    user = await session.scalar(
        select(User).where(User.email == auth_service.normalize_email(email))
    )
    if user is None or not _may_reset(user):
        return None
    assert user.email is not None
    link, ttl = await _reset_link(session, user, settings)
    text = (
        "Hello,\n\n"
        "Someone asked to reset the password of the Dropp account that uses this address. "
        f"To choose a new password, open this link within {_duration(ttl)}:\n\n"
        f"{link}\n\n"
        "Changing the password signs the account out everywhere. If you did not ask for this, "
        "ignore this message: your password stays as it is.\n"
    )
    return Mail(to=user.email, subject="Reset your Dropp password", text=text, link=link)


async def send_password_reset(
    sessionmaker: async_sessionmaker[AsyncSession],
    mailer: Mailer,
    settings: Settings,
    email: str,
) -> None:
    """Issue and mail a reset link, if an account may reset with `email`. Run after the
    answer is sent (a background task), so the answer is the same, and as quick, whether or
    not the account exists; the link is committed before it is mailed."""
    try:
        async with sessionmaker.begin() as session:
            mail = await issue_password_reset(session, email, settings)
    except (SQLAlchemyError, OSError) as error:
        logger.error("could not issue a password reset link: %s", error)
        return
    if mail is not None:
        await deliver(mailer, mail)


def _may_reset(user: User) -> bool:
    # A provider-only account that never proved its address gets no reset: it would get a
    # first password on the strength of an address nobody verified.
    return (
        user.email is not None
        and user.is_active
        and (user.password_hash is not None or user.email_verified_at is not None)
    )


async def _reset_link(session: AsyncSession, user: User, settings: Settings) -> tuple[str, int]:
    assert user.email is not None
    ttl = settings.password_reset_ttl_seconds
    token = await _issue(session, user.id, user.email, EmailTokenPurpose.RESET_PASSWORD, ttl)
    return _link(settings, RESET_PATH, token), ttl


async def issue_registration_notice(
    session: AsyncSession, user: User, settings: Settings
) -> Mail | None:
    """The mail to the owner of an address someone tried to register again: nothing changes
    on the account, and the owner gets a reset link in case it was them, having forgotten."""
    if user.email is None or not user.is_active:
        return None
    reset = ""
    # Without a reset to offer, the link is the sign-in page.
    link = f"{settings.public_url.rstrip('/')}/login/"
    if _may_reset(user):
        link, ttl = await _reset_link(session, user, settings)
        reset = (
            "If it was you and you forgot your password, choose a new one with this link "
            f"within {_duration(ttl)}:\n\n{link}\n\n"
        )
    text = (
        "Hello,\n\n"
        "Someone tried to create a Dropp account with this address, which already has a "
        "Dropp account. Nothing was changed: sign in as usual.\n\n"
        f"{reset}"
        "If it was not you, ignore this message: your account stays as it is.\n"
    )
    return Mail(
        to=user.email, subject="Someone tried to register with your address", text=text, link=link
    )


async def check_password_reset(session: AsyncSession, token: str) -> str:
    """The address of the account a reset link is for; nothing is changed."""
    link, _ = await _redeemable(session, token, EmailTokenPurpose.RESET_PASSWORD, lock=False)
    return link.email


async def reset_password(session: AsyncSession, token: str, password: str) -> User:
    """Set a new password, use up every reset link of the account and sign it out everywhere.

    Following the link proves control of the mailbox, so an unverified address becomes verified.
    """
    _, user = await _redeemable(session, token, EmailTokenPurpose.RESET_PASSWORD, lock=True)
    passwords.check_new_password(password)
    now = datetime.now(UTC)
    user.password_hash = await passwords.hash_password(password)
    if user.email_verified_at is None:
        user.email_verified_at = now
    await session.execute(
        update(EmailToken)
        .where(
            EmailToken.user_id == user.id,
            EmailToken.purpose == EmailTokenPurpose.RESET_PASSWORD,
            EmailToken.used_at.is_(None),
        )
        .values(used_at=now)
    )
    # Whoever knew the old password may hold sessions; they all end here.
    await auth_service.sign_out_everywhere(session, user.id)
    await session.flush()
    return user
