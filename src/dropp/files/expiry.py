"""When a file is removed: FILE_EXPIRY_DAYS after its upload, or sooner if the upload asks."""

from datetime import datetime, timedelta

from dropp.core.config import Settings
from dropp.core.errors import DroppError

DAY_SECONDS = 24 * 3600


class ExpiryTooLong(DroppError):
    status, code = 422, "expires_in_too_long"


def file_expires_at(settings: Settings, expires_in: int | None, now: datetime) -> datetime | None:
    """The file's removal time for an upload starting `now`; None keeps it indefinitely."""
    limit = None if settings.file_expiry_days is None else settings.file_expiry_days * DAY_SECONDS
    if expires_in is not None and limit is not None and expires_in > limit:
        raise ExpiryTooLong(
            f"expires_in is {expires_in} seconds; files on this server are kept at most "
            f"{settings.file_expiry_days} days ({limit} seconds).",
            max_expires_in=limit,
        )
    seconds = expires_in if expires_in is not None else limit
    return None if seconds is None else now + timedelta(seconds=seconds)
