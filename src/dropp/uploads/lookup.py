"""Finding the upload a request names: the caller's, locked, and unambiguous."""

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.files import service as files_service
from dropp.files.models import FileRevision, Node, RevisionState
from dropp.sharing import access as sharing_access
from dropp.sharing.models import Permission
from dropp.uploads.errors import UploadAmbiguous, UploadNotFound


async def locate_upload(
    session: AsyncSession, user_id: UUID, file_id: UUID, upload_id: UUID | None
) -> FileRevision:
    """The named upload of the caller's file, else its only pending one, else its newest;
    locked for the rest of the transaction. On a file shared with the caller, the same among
    the uploads the caller made, while it is still an editor there. Any other file is
    UploadNotFound."""
    revision = await files_service.lock_revision(session, user_id, file_id, upload_id)
    if revision is None:
        return await _locate_editors_upload(session, user_id, file_id, upload_id)
    if (
        revision.state == RevisionState.PENDING
        and upload_id is None
        and await files_service.count_pending(session, file_id) > 1
    ):
        raise UploadAmbiguous(
            "Several uploads of this file are pending: name one with `upload_id`."
        )
    return revision


async def _locate_editors_upload(
    session: AsyncSession, user_id: UUID, file_id: UUID, upload_id: UUID | None
) -> FileRevision:
    share = await sharing_access.shared_access(session, user_id, file_id)
    if share is None or share.permission != Permission.EDITOR:
        raise UploadNotFound("There is no such upload.")
    # The file row before the revision: the order completion and deletion take them in. A
    # trash that committed since the access check shows here, and ends the editor's access.
    node = await session.scalar(
        select(Node)
        .where(Node.id == file_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if node is None or node.trashed_at is not None:
        raise UploadNotFound("There is no such upload.")
    mine = (FileRevision.node_id == file_id, FileRevision.uploaded_by == user_id)
    query = select(FileRevision).where(*mine)
    if upload_id is not None:
        query = query.where(FileRevision.id == upload_id)
    else:
        query = query.order_by(
            (FileRevision.state == RevisionState.PENDING).desc(), FileRevision.created_at.desc()
        )
    revision = await session.scalar(query.limit(1).with_for_update())
    if revision is None:
        raise UploadNotFound("There is no such upload.")
    if revision.state == RevisionState.PENDING and upload_id is None:
        pending = await session.scalar(
            select(func.count()).where(*mine, FileRevision.state == RevisionState.PENDING)
        )
        if pending and pending > 1:
            raise UploadAmbiguous(
                "Several of your uploads of this file are pending: name one with `upload_id`."
            )
    return revision


async def pending_post_keys(
    session: AsyncSession, user_id: UUID, named: Sequence[tuple[UUID, UUID | None]]
) -> dict[UUID, tuple[str, bool]]:
    """For the uploads named by (file id, upload id or None), those that are pending single
    POSTs the caller owns or made: by revision id, the storage key and whether a SHA-256 was
    declared. Nothing is locked or decided here (`locate_upload` does that); it tells what
    to ask storage about ahead."""
    if not named:
        return {}
    rows = await session.execute(
        select(
            FileRevision.id,
            FileRevision.node_id,
            FileRevision.storage_key,
            FileRevision.sha256.is_not(None),
        )
        .join(Node, Node.id == FileRevision.node_id)
        .where(
            FileRevision.node_id.in_({file_id for file_id, _ in named}),
            FileRevision.state == RevisionState.PENDING,
            FileRevision.multipart_upload_id.is_(None),
            or_(Node.owner_id == user_id, FileRevision.uploaded_by == user_id),
        )
    )
    by_file: dict[UUID, list[tuple[UUID, str, bool]]] = {}
    for revision_id, node_id, key, declared in rows:
        by_file.setdefault(node_id, []).append((revision_id, key, declared))
    keys: dict[UUID, tuple[str, bool]] = {}
    for file_id, upload_id in named:
        pending = by_file.get(file_id, [])
        if upload_id is None and len(pending) > 1:
            continue
        for revision_id, key, declared in pending:
            if upload_id in (None, revision_id):
                keys[revision_id] = (key, declared)
    return keys
