"""The link's side of a file request: anyone holding the token may start uploads into the
folder, complete or cancel them, and learn nothing else about it."""

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from sqlalchemy import ColumnElement, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.auth.models import User
from dropp.auth.tokens import secret_digest
from dropp.core.config import Settings
from dropp.file_requests import placement
from dropp.file_requests.errors import FileRequestFull, FileRequestNoSpace, FileRequestNotFound
from dropp.file_requests.models import FileRequest
from dropp.file_requests.schemas import (
    DropCompleteRead,
    DropCreate,
    DropRead,
    FileRequestPublicRead,
)
from dropp.file_requests.service import server_file_limit
from dropp.files import expiry as file_expiry
from dropp.files import locks
from dropp.files import service as files_service
from dropp.files.models import FileRevision, Node
from dropp.quotas import service as quotas_service
from dropp.quotas.errors import QuotaExceeded
from dropp.roles import service as roles_service
from dropp.roles.policy import UploadPolicy
from dropp.storage.s3 import Storage
from dropp.uploads import pending
from dropp.uploads import service as uploads_service
from dropp.uploads.errors import FileTooLarge, UploadAlreadyComplete, UploadNotFound
from dropp.uploads.schemas import PresignedForm

# Anything longer was not issued here; it is refused before it is hashed.
MAX_TOKEN_LENGTH = 128

NOT_FOUND = (
    "This link does not accept files: it is mistyped, was closed by its owner, or its "
    "deadline has passed."
)


def _before_deadline() -> ColumnElement[bool]:
    return or_(FileRequest.deadline.is_(None), FileRequest.deadline > func.now())


def _folder_live() -> ColumnElement[bool]:
    return exists().where(Node.id == FileRequest.folder_id, Node.trashed_at.is_(None))


async def find_request(
    session: AsyncSession, settings: Settings, token: str, *, any_deadline: bool = False
) -> FileRequest:
    """The request behind the token, if it takes files: not closed, before its deadline (unless
    `any_deadline`), its folder live, its owner an active account that may upload.
    FileRequestNotFound for every other case alike."""
    request, _ = await _find_request_and_policy(session, settings, token, any_deadline)
    return request


async def _find_request_and_policy(
    session: AsyncSession, settings: Settings, token: str, any_deadline: bool
) -> tuple[FileRequest, UploadPolicy]:
    """`find_request`, with the upload policy of the owner's role as it is now."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise FileRequestNotFound(NOT_FOUND)
    query = (
        select(FileRequest, User.role)
        .join(User, User.id == FileRequest.owner_id)
        .where(
            FileRequest.token_digest == secret_digest(token),
            FileRequest.revoked_at.is_(None),
            _folder_live(),
            User.is_active,
        )
    )
    if not any_deadline:
        query = query.where(_before_deadline())
    row = (await session.execute(query)).first()
    policy = settings.upload_policy(row.role) if row is not None else None
    # A role that may no longer upload closes its links too: they would fill the account.
    if row is None or policy is None or not policy.can_upload:
        raise FileRequestNotFound(NOT_FOUND)
    request: FileRequest = row[0]
    return request, policy


def file_limit(settings: Settings, request: FileRequest) -> int:
    """The largest file the link takes: its own limit within the server's."""
    ceiling = server_file_limit(settings)
    if request.max_file_bytes is None:
        return ceiling
    return min(request.max_file_bytes, ceiling)


def public_view(settings: Settings, request: FileRequest) -> FileRequestPublicRead:
    """What the link shows its holder: never the folder, its contents, or the owner."""
    uploads_left = None
    if request.max_uploads is not None:
        uploads_left = max(request.max_uploads - request.uploads_used, 0)
    return FileRequestPublicRead(
        title=request.title,
        deadline=request.deadline,
        max_file_bytes=file_limit(settings, request),
        uploads_left=uploads_left,
    )


async def _take_a_use(session: AsyncSession, request: FileRequest) -> None:
    """Count the upload against the request, atomically with every condition it must meet.

    The row stays locked until the transaction ends, so concurrent uploads through one link
    are counted one after the other and exactly `max_uploads` of them succeed.
    """
    still_open = (
        FileRequest.id == request.id,
        FileRequest.revoked_at.is_(None),
        _before_deadline(),
        _folder_live(),
    )
    counted = await session.scalar(
        update(FileRequest)
        .where(
            *still_open,
            or_(
                FileRequest.max_uploads.is_(None),
                FileRequest.uploads_used < FileRequest.max_uploads,
            ),
        )
        .values(uploads_used=FileRequest.uploads_used + 1)
        .returning(FileRequest.uploads_used)
        .execution_options(synchronize_session=False)
    )
    if counted is not None:
        return
    if await session.scalar(select(exists().where(*still_open))):
        raise FileRequestFull(
            "This link has taken all the uploads it allows. Ask its owner for a new one."
        )
    # Closed, past its deadline or its folder trashed since it was looked up.
    raise FileRequestNotFound(NOT_FOUND)


async def start_drop(
    session: AsyncSession, storage: Storage, settings: Settings, token: str, body: DropCreate
) -> DropRead:
    """A new file in the request's folder, pending, and the form that puts its bytes there."""
    request, policy = await _find_request_and_policy(session, settings, token, False)
    content_type = body.content_type or uploads_service.guess_content_type(body.filename)
    # The owner's role decides what enters the owner's tree, through a link as through a
    # direct upload: the same check, on the type the form will be signed with.
    roles_service.check_upload(policy, filename=body.filename, content_type=content_type)
    limit = roles_service.size_limit(policy, file_limit(settings, request))
    if body.size > limit:
        raise FileTooLarge(
            f"The file is {body.size} bytes; this link takes files of at most {limit} bytes.",
            max_bytes=limit,
        )
    owner_id, folder_id = request.owner_id, request.folder_id
    # Shared with every upload, exclusive for a trash: the folder cannot go to the trash
    # between the check below and the new file's insert.
    await locks.share_tree(session, owner_id)
    await _take_a_use(session, request)

    sha256 = bytes.fromhex(body.sha256) if body.sha256 is not None else None
    now = datetime.now(UTC)
    expires_at = now + timedelta(seconds=settings.upload_post_ttl_seconds)
    file_id = await placement.new_file(session, owner_id, folder_id, body.filename)
    revision = FileRevision(
        id=uuid4(),
        node_id=file_id,
        storage_key=uploads_service.storage_key(owner_id),
        declared_size=body.size,
        content_type=content_type,
        sha256=sha256,
        upload_expires_at=expires_at,
        file_request_id=request.id,
    )
    session.add(revision)
    await session.flush()
    file_expires_at = file_expiry.file_expires_at(settings, None, now)
    if file_expires_at is not None:
        await files_service.set_expiry(session, file_id, file_expires_at)
    try:
        await quotas_service.reserve_upload(
            session, settings, owner_id, revision.id, size=body.size, max_bytes=limit
        )
    except QuotaExceeded:
        # Rolled back with the rest, the use counted above included.
        raise FileRequestNoSpace(
            "The owner of this link has no room left for a file of this size."
        ) from None
    await pending.check_pending_caps(session, settings, owner_id)
    form = await storage.presign_post(
        revision.storage_key,
        min_size=body.size,
        max_size=body.size,
        content_type=content_type,
        expires_in=settings.upload_post_ttl_seconds,
        sha256=sha256,
    )
    return DropRead(
        upload_id=revision.id,
        file_id=file_id,
        upload=PresignedForm(url=form.url, fields=form.fields),
        expires_at=expires_at,
    )


async def _drop_file_id(session: AsyncSession, request: FileRequest, upload_id: UUID) -> UUID:
    """The file of an upload started through this request; UploadNotFound for any other."""
    file_id = await session.scalar(
        select(FileRevision.node_id).where(
            FileRevision.id == upload_id, FileRevision.file_request_id == request.id
        )
    )
    if file_id is None:
        raise UploadNotFound("This link started no such upload.")
    return file_id


async def complete_drop(
    session: AsyncSession, storage: Storage, settings: Settings, token: str, upload_id: UUID
) -> DropCompleteRead:
    """Make the upload a file of the owner's once storage holds its bytes, as any upload.

    An upload started before the deadline may finish after it, within its form's lifetime.
    """
    request = await find_request(session, settings, token, any_deadline=True)
    file_id = await _drop_file_id(session, request, upload_id)
    read = await uploads_service.complete_upload(
        session, storage, request.owner_id, file_id, upload_id
    )
    assert read.size is not None
    return DropCompleteRead(size=read.size, content_hash=read.content_hash)


async def cancel_drop(
    session: AsyncSession, settings: Settings, token: str, upload_id: UUID
) -> uploads_service.Cleanup:
    """Remove an upload that is not complete, and its file; the request gets its use back.

    Returns what storage holds for it, to delete once the rows are gone.
    """
    request = await find_request(session, settings, token, any_deadline=True)
    file_id = await _drop_file_id(session, request, upload_id)
    try:
        cleanup = await uploads_service.cancel_upload(session, request.owner_id, file_id, upload_id)
    except UploadAlreadyComplete:
        raise UploadAlreadyComplete(
            "This upload is complete; only the folder's owner can remove the file.",
            upload_id=str(upload_id),
        ) from None
    await session.execute(
        update(FileRequest)
        .where(FileRequest.id == request.id, FileRequest.uploads_used > 0)
        .values(uploads_used=FileRequest.uploads_used - 1)
        .execution_options(synchronize_session=False)
    )
    return cleanup
