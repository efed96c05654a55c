"""The device authorization grant (RFC 8628), for terminals and headless machines: the device
polls with a secret device code while a person approves a short user code in a browser."""

import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.auth.models import DeviceAuthorization, DeviceStatus, User
from dropp.auth.schemas import TokenRead
from dropp.auth.service import TokenIssuer
from dropp.auth.tokens import new_secret, secret_digest
from dropp.core.config import Settings
from dropp.oauth.errors import (
    AccessDenied,
    AuthorizationPending,
    ExpiredToken,
    InvalidGrant,
    SlowDown,
    UnknownUserCode,
)
from dropp.oauth.schemas import DeviceGrantRead

# RFC 8628 §6.1: consonants only (no words, no 0/O or 1/I confusion), 8 of 20 = 34.6 bits,
# ample for a code that lives minutes and can only be entered by a signed-in person.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
SLOW_DOWN_STEP_SECONDS = 5


def normalize_user_code(typed: str) -> str:
    """What a person types, as stored: case and separators do not matter."""
    return "".join(c for c in typed.upper() if c in USER_CODE_ALPHABET)


def _display(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


async def start(session: AsyncSession, settings: Settings) -> DeviceGrantRead:
    device_code = new_secret()
    now = datetime.now(UTC)
    while True:
        user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
        added = await session.scalar(
            insert(DeviceAuthorization)
            .values(
                device_code_hash=secret_digest(device_code),
                user_code_hash=secret_digest(user_code),
                status=DeviceStatus.PENDING,
                interval_seconds=settings.device_poll_interval_seconds,
                expires_at=now + timedelta(seconds=settings.device_code_ttl_seconds),
            )
            .on_conflict_do_nothing(index_elements=[DeviceAuthorization.user_code_hash])
            .returning(DeviceAuthorization.id)
        )
        if added is not None:
            break
    verification_uri = f"{settings.public_url.rstrip('/')}/auth/device/verify"
    shown = _display(user_code)
    return DeviceGrantRead(
        device_code=device_code,
        user_code=shown,
        verification_uri=verification_uri,
        verification_uri_complete=f"{verification_uri}?{urlencode({'user_code': shown})}",
        expires_in=settings.device_code_ttl_seconds,
        interval=settings.device_poll_interval_seconds,
    )


async def poll(session: AsyncSession, issuer: TokenIssuer, device_code: str) -> TokenRead:
    """Tokens once approved; otherwise the RFC 8628 §3.5 error telling the device what to do."""
    now = datetime.now(UTC)
    device = await session.scalar(
        select(DeviceAuthorization)
        .where(DeviceAuthorization.device_code_hash == secret_digest(device_code))
        .with_for_update()
    )
    if device is None or device.status == DeviceStatus.REDEEMED:
        raise InvalidGrant("The device code is invalid or was already used.")
    if device.expires_at <= now:
        raise ExpiredToken("The device code has expired; start again.")
    if device.status == DeviceStatus.DENIED:
        raise AccessDenied("The sign-in was denied.")
    polled_at, device.last_polled_at = device.last_polled_at, now
    if polled_at is not None and now - polled_at < timedelta(seconds=device.interval_seconds):
        device.interval_seconds += SLOW_DOWN_STEP_SECONDS
        raise SlowDown(
            f"Polling too fast; wait {device.interval_seconds} s between requests.",
            interval=device.interval_seconds,
        )
    if device.status == DeviceStatus.PENDING:
        raise AuthorizationPending("Waiting for the user to approve the sign-in.")
    assert device.user_id is not None
    user = await session.get(User, device.user_id)
    if user is None or not user.is_active:
        raise InvalidGrant("The account is disabled.")
    device.status = DeviceStatus.REDEEMED
    return await issuer.issue(session, user)


async def pending_for(session: AsyncSession, typed_code: str) -> DeviceAuthorization:
    code = normalize_user_code(typed_code)
    device = await session.scalar(
        select(DeviceAuthorization)
        .where(DeviceAuthorization.user_code_hash == secret_digest(code))
        .with_for_update()
    )
    if (
        len(code) != USER_CODE_LENGTH
        or device is None
        or device.status != DeviceStatus.PENDING
        or device.expires_at <= datetime.now(UTC)
    ):
        raise UnknownUserCode("No device is waiting for this code; it may have expired.")
    return device


async def decide(session: AsyncSession, typed_code: str, user: User, *, approve: bool) -> None:
    device = await pending_for(session, typed_code)
    device.status = DeviceStatus.APPROVED if approve else DeviceStatus.DENIED
    device.user_id = user.id
