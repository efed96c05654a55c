"""Issuing download URLs, recording each one, and the counts owners and admins read back."""

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.core.config import Settings
from dropp.downloads.models import Channel, Download
from dropp.files.models import FileRevision, Node
from dropp.files.schemas import DownloadRead
from dropp.storage.s3 import Storage


@dataclass(frozen=True, slots=True)
class Downloader:
    """Who a download URL is issued to, and through what."""

    channel: Channel
    user_id: UUID | None = None
    link_id: UUID | None = None
    grant_id: UUID | None = None
    # For anonymous link downloads: see `ip_hash`.
    ip_hash: bytes | None = None


def ip_hash(settings: Settings, address: str) -> bytes:
    """An anonymous downloader, told apart without storing the address: HMAC-SHA256 keyed by
    SECRET_KEY, so the hash cannot be reversed by trying every address without the key."""
    assert settings.secret_key is not None
    key = hmac.new(
        settings.secret_key.get_secret_value().encode(), b"dropp download ip", hashlib.sha256
    ).digest()
    return hmac.new(key, address.encode(), hashlib.sha256).digest()


async def record_download(
    session: AsyncSession,
    downloader: Downloader,
    *,
    owner_id: UUID,
    node_id: UUID,
    revision_id: UUID,
) -> None:
    """One row per URL issued, in the transaction that issues it."""
    await session.execute(
        insert(Download).values(
            owner_id=owner_id,
            node_id=node_id,
            revision_id=revision_id,
            channel=downloader.channel,
            link_id=downloader.link_id,
            grant_id=downloader.grant_id,
            user_id=downloader.user_id,
            ip_hash=downloader.ip_hash,
        )
    )


async def issue_download(
    session: AsyncSession,
    storage: Storage,
    downloader: Downloader,
    file: Node,
    revision: FileRevision,
    *,
    expires_in: int,
) -> DownloadRead:
    """A URL for exactly this revision's pinned version, as an attachment named like the
    file, recorded as a download in the transaction that issues it."""
    await record_download(
        session, downloader, owner_id=file.owner_id, node_id=file.id, revision_id=revision.id
    )
    url = await storage.presign_get(
        revision.storage_key,
        version_id=revision.version_id,
        filename=file.name,
        content_type=revision.content_type,
        expires_in=expires_in,
    )
    return DownloadRead(url=url, expires_at=datetime.now(UTC) + timedelta(seconds=expires_in))


async def counts_by_link(session: AsyncSession, link_ids: list[UUID]) -> dict[UUID, int]:
    """Download URLs issued through each of these links."""
    if not link_ids:
        return {}
    rows = await session.execute(
        select(Download.link_id, func.count())
        .where(Download.link_id.in_(link_ids))
        .group_by(Download.link_id)
    )
    return {link_id: count for link_id, count in rows if link_id is not None}


@dataclass(frozen=True, slots=True)
class FileDownloads:
    by_channel: dict[Channel, int]
    last_downloaded_at: datetime | None


async def counts_by_file(session: AsyncSession, owner_id: UUID, node_id: UUID) -> FileDownloads:
    """Download URLs issued for one of the owner's files, by channel, and the latest one."""
    rows = await session.execute(
        select(Download.channel, func.count(), func.max(Download.created_at))
        .where(Download.owner_id == owner_id, Download.node_id == node_id)
        .group_by(Download.channel)
    )
    by_channel = dict.fromkeys(Channel, 0)
    last: datetime | None = None
    for channel, count, latest in rows:
        by_channel[Channel(channel)] = count
        last = latest if last is None or latest > last else last
    return FileDownloads(by_channel=by_channel, last_downloaded_at=last)
