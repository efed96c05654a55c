"""Argon2id password hashing, off the event loop (each hash costs tens of milliseconds)."""

import asyncio
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@cache
def _decoy_hash() -> str:
    return _hasher().hash("decoy password that matches no account")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher().hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Check `password`; with no hash, spend the same time so timing does not reveal accounts."""

    def verify() -> bool:
        try:
            return _hasher().verify(password_hash or _decoy_hash(), password) and (
                password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)
