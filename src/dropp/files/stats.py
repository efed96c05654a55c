"""Server-wide file figures, for the admin statistics."""

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Date, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.files.models import FileRevision, Node, NodeKind, RevisionState


@dataclass(frozen=True, slots=True)
class FileTotals:
    live: int
    in_trash: int


async def file_totals(session: AsyncSession) -> FileTotals:
    """Files with a completed upload, live and in the trash."""
    row = (
        await session.execute(
            select(
                func.count().filter(Node.trashed_at.is_(None)),
                func.count().filter(Node.trashed_at.is_not(None)),
            ).where(Node.kind == NodeKind.FILE, Node.current_revision_id.is_not(None))
        )
    ).one()
    return FileTotals(live=row[0], in_trash=row[1])


async def uploads_per_day(session: AsyncSession, since: datetime) -> dict[date, tuple[int, int]]:
    """Completed uploads per UTC day since `since`: (count, bytes)."""
    day = cast(func.timezone("UTC", FileRevision.completed_at), Date)
    rows = await session.execute(
        select(day, func.count(), func.coalesce(func.sum(FileRevision.size), 0))
        .where(FileRevision.state == RevisionState.COMPLETE, FileRevision.completed_at >= since)
        .group_by(day)
    )
    return {found: (count, size or 0) for found, count, size in rows}
