"""The owner's side of file requests: opening one on a folder, listing them, closing one."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.auth.tokens import AccessClaims, new_secret, secret_digest
from dropp.core.config import Settings
from dropp.core.pagination import CursorError, encode_cursor, newest_first
from dropp.file_requests.errors import (
    DeadlineInPast,
    FileRequestNotFound,
    FileSizeLimitTooHigh,
)
from dropp.file_requests.models import FileRequest
from dropp.file_requests.schemas import (
    FileRequestCreate,
    FileRequestCreated,
    FileRequestPage,
    FileRequestRead,
    FileRequestState,
)
from dropp.files import locks, tree
from dropp.files import service as files_service
from dropp.files.errors import FolderNotFound, InvalidCursor
from dropp.files.models import FileRevision, Node, NodeKind, RevisionState
from dropp.files.names import split_folder_path
from dropp.roles import service as roles_service
from dropp.roles.errors import UploadNotAllowed
from dropp.uploads.errors import EmailNotVerified
from dropp.uploads.service import SINGLE_POST_MAX_BYTES

LINK_PATH = "/r/"


def link_url(settings: Settings, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}{LINK_PATH}{token}"


def server_file_limit(settings: Settings) -> int:
    """The largest file any link accepts: uploads through a link are single presigned POSTs."""
    return min(settings.max_upload_bytes, SINGLE_POST_MAX_BYTES)


def state_of(request: FileRequest, folder_trashed: bool, now: datetime) -> FileRequestState:
    if folder_trashed:
        return FileRequestState.FOLDER_IN_TRASH
    if request.deadline is not None and request.deadline <= now:
        return FileRequestState.EXPIRED
    if request.max_uploads is not None and request.uploads_used >= request.max_uploads:
        return FileRequestState.FULL
    return FileRequestState.OPEN


def _read(
    request: FileRequest, folder_path: str, folder_trashed: bool, received: int, now: datetime
) -> FileRequestRead:
    return FileRequestRead(
        id=request.id,
        title=request.title,
        folder_id=request.folder_id,
        folder_path=folder_path,
        deadline=request.deadline,
        max_file_bytes=request.max_file_bytes,
        max_uploads=request.max_uploads,
        uploads_used=request.uploads_used,
        files_received=received,
        state=state_of(request, folder_trashed, now),
        created_at=request.created_at,
    )


async def _folder(
    session: AsyncSession, owner_id: UUID, body: FileRequestCreate
) -> tuple[UUID, str]:
    """The request's folder and its path: the caller's live folder, or one made at the path."""
    if body.folder_path is not None:
        # Made exactly as POST /folders makes it, under the exclusive tree lock.
        folder, _ = await tree.create_folder(session, owner_id, split_folder_path(body.folder_path))
        return folder.folder_id, folder.path
    assert body.folder_id is not None
    # Shared, so a trash of the folder lands before this check or after the request exists.
    await locks.share_tree(session, owner_id)
    found = await session.scalar(files_service.live_node(owner_id, body.folder_id, NodeKind.FOLDER))
    if found is None:
        raise FolderNotFound("There is no such folder.")
    return found.id, (await files_service.folder_paths(session, {found.id}))[found.id]


async def create_request(
    session: AsyncSession, settings: Settings, principal: AccessClaims, body: FileRequestCreate
) -> FileRequestCreated:
    """Open an upload-only link into one of the caller's folders; the token is shown once."""
    # Files dropped through the link land in the owner's account: the owner must be someone
    # who may put files there at all.
    if settings.require_email_verification and not principal.email_verified:
        raise EmailNotVerified(
            "Verify your email address before accepting files through a link: open the link "
            "in the verification email Dropp sent you, then refresh your tokens with "
            "POST /auth/refresh so your access token carries the verified address."
        )
    policy = settings.upload_policy(principal.role)
    if not policy.can_upload:
        raise UploadNotAllowed(
            "Your account's role may not upload files, so it cannot accept them through a link."
        )
    ceiling = roles_service.size_limit(policy, server_file_limit(settings))
    if body.max_file_bytes is not None and body.max_file_bytes > ceiling:
        raise FileSizeLimitTooHigh(
            f"max_file_bytes is at most {ceiling}, the largest file your account may upload "
            "in one piece.",
            max_bytes=ceiling,
        )
    # Without a limit of its own, the role's holds; the server's is applied as it is when
    # each file arrives.
    max_file_bytes = (
        body.max_file_bytes if body.max_file_bytes is not None else policy.max_file_bytes
    )
    now = datetime.now(UTC)
    deadline = body.deadline
    if body.expires_in is not None:
        deadline = now + timedelta(seconds=body.expires_in)
    if deadline is not None and deadline <= now:
        raise DeadlineInPast("The deadline has passed already: give a moment in the future.")

    owner_id = principal.user_id
    folder_id, folder_path = await _folder(session, owner_id, body)
    token = new_secret()
    request = await session.scalar(
        insert(FileRequest)
        .values(
            owner_id=owner_id,
            folder_id=folder_id,
            token_digest=secret_digest(token),
            title=body.title,
            deadline=deadline,
            max_file_bytes=max_file_bytes,
            max_uploads=body.max_uploads,
        )
        .returning(FileRequest)
    )
    assert request is not None
    read = _read(request, folder_path, folder_trashed=False, received=0, now=now)
    return FileRequestCreated(**read.model_dump(), token=token, url=link_url(settings, token))


async def _received(session: AsyncSession, request_ids: Sequence[UUID]) -> dict[UUID, int]:
    """Completed uploads per request, of the files the owner still has."""
    if not request_ids:
        return {}
    rows = await session.execute(
        select(FileRevision.file_request_id, func.count())
        .where(
            FileRevision.file_request_id.in_(request_ids),
            FileRevision.state == RevisionState.COMPLETE,
        )
        .group_by(FileRevision.file_request_id)
    )
    return {request_id: count for request_id, count in rows if request_id is not None}


async def _reads(
    session: AsyncSession, rows: Sequence[tuple[FileRequest, bool]]
) -> list[FileRequestRead]:
    paths = await files_service.folder_paths(session, {request.folder_id for request, _ in rows})
    received = await _received(session, [request.id for request, _ in rows])
    now = datetime.now(UTC)
    return [
        _read(request, paths[request.folder_id], trashed, received.get(request.id, 0), now)
        for request, trashed in rows
    ]


def _owned(owner_id: UUID) -> Select[FileRequest, bool]:
    """The owner's requests that are not closed, each with whether its folder is in the trash."""
    return (
        select(FileRequest, Node.trashed_at.is_not(None))
        .join(Node, Node.id == FileRequest.folder_id)
        .where(FileRequest.owner_id == owner_id, FileRequest.revoked_at.is_(None))
    )


async def get_request(session: AsyncSession, owner_id: UUID, request_id: UUID) -> FileRequestRead:
    """One of the caller's requests that is not closed; FileRequestNotFound for anything else."""
    row = (await session.execute(_owned(owner_id).where(FileRequest.id == request_id))).first()
    if row is None:
        raise FileRequestNotFound("There is no such file request.")
    return (await _reads(session, [(row[0], row[1])]))[0]


async def list_requests(
    session: AsyncSession, owner_id: UUID, *, cursor: str | None, limit: int
) -> FileRequestPage:
    """The caller's requests that are not closed, newest first."""
    query = _owned(owner_id)
    try:
        query = newest_first(query, FileRequest.created_at, FileRequest.id, cursor, limit)
    except CursorError as error:
        raise InvalidCursor("The cursor is not one this server issued.") from error
    rows = [(request, trashed) for request, trashed in await session.execute(query)]
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1][0]
        next_cursor = encode_cursor(last.created_at, last.id)
    return FileRequestPage(file_requests=await _reads(session, page), next_cursor=next_cursor)


async def close_request(session: AsyncSession, owner_id: UUID, request_id: UUID) -> None:
    """Close the link for good: it answers 404 from now on, pending uploads included."""
    closed = await session.scalar(
        update(FileRequest)
        .where(
            FileRequest.id == request_id,
            FileRequest.owner_id == owner_id,
            FileRequest.revoked_at.is_(None),
        )
        .values(revoked_at=func.now())
        .returning(FileRequest.id)
    )
    if closed is None:
        raise FileRequestNotFound("There is no such file request.")
