"""Server-wide download figures, for the admin statistics."""

from datetime import date, datetime

from sqlalchemy import Date, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.downloads.models import Download


async def downloads_per_day(session: AsyncSession, since: datetime) -> dict[date, int]:
    """Download URLs issued per UTC day since `since`."""
    day = cast(func.timezone("UTC", Download.created_at), Date)
    rows = await session.execute(
        select(day, func.count()).where(Download.created_at >= since).group_by(day)
    )
    return dict(rows.all())
