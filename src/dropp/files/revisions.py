"""A file's history: its complete revisions, each pinned to one stored version, and restoring
an old one as the newest by a copy inside storage (no bytes pass through the API)."""

from datetime import UTC, datetime
from uuid import UUID, uuid4

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.auth.models import User
from dropp.core.config import Settings
from dropp.core.pagination import CursorError, encode_cursor, newest_first
from dropp.files import service as files_service
from dropp.files.errors import FileNotFound, InvalidCursor
from dropp.files.models import FileRevision, Node, NodeKind, RevisionState
from dropp.files.revision_errors import RevisionNotFound
from dropp.files.revision_schemas import RevisionPage, RevisionRead
from dropp.files.schemas import FileRead
from dropp.quotas import service as quotas_service
from dropp.storage.s3 import Storage
from dropp.uploads import service as uploads_service


def _read(revision: FileRevision, current_id: UUID | None, emails: dict[UUID, str]) -> RevisionRead:
    assert revision.size is not None
    assert revision.completed_at is not None
    return RevisionRead(
        revision_id=revision.id,
        size=revision.size,
        content_hash=files_service.content_hash(revision.sha256, revision.part_size),
        content_type=revision.content_type,
        created_at=revision.created_at,
        completed_at=revision.completed_at,
        device=revision.device,
        current=revision.id == current_id,
        uploaded_by=revision.uploaded_by,
        uploaded_by_email=emails.get(revision.uploaded_by) if revision.uploaded_by else None,
    )


async def list_revisions(
    session: AsyncSession, file: Node, *, cursor: str | None, limit: int
) -> RevisionPage:
    """The file's complete revisions, newest (last completed) first."""
    query = select(FileRevision).where(
        FileRevision.node_id == file.id, FileRevision.state == RevisionState.COMPLETE
    )
    try:
        query = newest_first(query, FileRevision.completed_at, FileRevision.id, cursor, limit)
    except CursorError as error:
        raise InvalidCursor("The cursor is not one this server issued.") from error
    rows = list(await session.scalars(query))
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        assert last.completed_at is not None
        next_cursor = encode_cursor(last.completed_at, last.id)
    uploaders = {r.uploaded_by for r in page if r.uploaded_by is not None}
    emails: dict[UUID, str] = {}
    if uploaders:
        found = await session.execute(select(User.id, User.email).where(User.id.in_(uploaders)))
        emails = {user_id: email for user_id, email in found if email is not None}
    return RevisionPage(
        revisions=[_read(r, file.current_revision_id, emails) for r in page],
        next_cursor=next_cursor,
    )


async def get_revision(session: AsyncSession, file: Node, revision_id: UUID) -> FileRevision:
    """One complete revision of the caller's file; RevisionNotFound for anything else."""
    revision = await session.scalar(
        select(FileRevision).where(
            FileRevision.id == revision_id,
            FileRevision.node_id == file.id,
            FileRevision.state == RevisionState.COMPLETE,
        )
    )
    if revision is None:
        raise RevisionNotFound("This file has no such revision.")
    return revision


async def restore_revision(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    owner_id: UUID,
    file_id: UUID,
    revision_id: UUID,
    *,
    device: str | None,
) -> FileRead:
    """Make an old revision's bytes the file's newest revision.

    The file row is locked first, as completion does, so a restore and an upload completing
    at once take turns. The copy is a new object under a new key, written before the row
    that points at it commits; if that commit is lost, the orphan scan removes it. Restoring
    what the file already serves changes nothing.
    """
    file = await session.scalar(
        select(Node)
        .where(Node.id == file_id, Node.owner_id == owner_id, Node.kind == NodeKind.FILE)
        .with_for_update()
    )
    if file is None:
        raise FileNotFound("There is no such file.")
    old = await get_revision(session, file, revision_id)
    current = await files_service.get_current_revision(session, file)
    if current is not None and (
        current.id == old.id
        or (
            old.sha256 is not None
            and (current.sha256, current.part_size, current.size)
            == (old.sha256, old.part_size, old.size)
        )
    ):
        return await files_service.read_file(session, file.id)
    assert old.size is not None
    assert old.version_id is not None
    now = datetime.now(UTC)
    key = uploads_service.storage_key(owner_id)
    revision = FileRevision(
        id=uuid4(),
        node_id=file.id,
        storage_key=key,
        declared_size=old.size,
        content_type=old.content_type,
        # Same bytes, so the same content hash: a client that has them already sees it.
        sha256=old.sha256,
        part_size=old.part_size,
        device=device,
        upload_expires_at=now,
    )
    session.add(revision)
    await session.flush()
    # Held like an upload-init's reservation, so a full quota refuses the copy before it is made.
    await quotas_service.reserve_upload(
        session, settings, owner_id, revision.id, size=old.size, max_bytes=old.size
    )
    copied = await storage.copy_version(
        old.storage_key,
        old.version_id,
        key,
        size=old.size,
        content_type=old.content_type,
    )
    await files_service.complete_revision(
        session,
        revision,
        size=copied.size,
        etag=copied.etag,
        version_id=copied.version_id,
        content_type=old.content_type,
    )
    return await files_service.read_file(session, file.id)
