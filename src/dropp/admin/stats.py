"""`GET /admin/stats`: accounts, files, stored bytes, and daily uploads and downloads."""

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Date, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.admin.schemas import AccountTotals, DayStats, FileTotalsRead, StatsRead
from dropp.auth.models import User
from dropp.downloads.stats import downloads_per_day
from dropp.files.stats import file_totals, uploads_per_day


async def server_stats(session: AsyncSession, *, days: int, today: date | None = None) -> StatsRead:
    """The last `days` UTC days, today included, oldest first; days without activity are 0."""
    today = today or datetime.now(UTC).date()
    first_day = today - timedelta(days=days - 1)
    since = datetime.combine(first_day, time.min, tzinfo=UTC)
    uploads = await uploads_per_day(session, since)
    downloads = await downloads_per_day(session, since)
    joined = await _accounts_per_day(session, since)
    files = await file_totals(session)
    return StatsRead(
        accounts=await _account_totals(session),
        files=FileTotalsRead(live=files.live, in_trash=files.in_trash),
        # Every kept revision, in the trash too: what storage holds for the accounts.
        bytes_stored=await session.scalar(select(func.coalesce(func.sum(User.used_bytes), 0))) or 0,
        days=[
            DayStats(
                date=day,
                uploads=uploads.get(day, (0, 0))[0],
                upload_bytes=uploads.get(day, (0, 0))[1],
                downloads=downloads.get(day, 0),
                new_accounts=joined.get(day, 0),
            )
            for day in (first_day + timedelta(days=n) for n in range(days))
        ],
    )


async def _account_totals(session: AsyncSession) -> AccountTotals:
    total, active, verified = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(User.is_active),
                func.count().filter(User.email_verified_at.is_not(None)),
            )
        )
    ).one()
    by_role = await session.execute(select(User.role, func.count()).group_by(User.role))
    return AccountTotals(total=total, active=active, verified=verified, by_role=dict(by_role.all()))


async def _accounts_per_day(session: AsyncSession, since: datetime) -> dict[date, int]:
    day = cast(func.timezone("UTC", User.created_at), Date)
    rows = await session.execute(
        select(day, func.count()).where(User.created_at >= since).group_by(day)
    )
    return dict(rows.all())
