"""Upload sessions: sign a storage form for a pending revision, then complete it from what
storage reports. File bytes never pass through here."""

import mimetypes
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from dropp.auth.tokens import AccessClaims
from dropp.core.config import Settings
from dropp.files import service as files_service
from dropp.files.models import FileRevision, RevisionState
from dropp.files.names import split_folder_path
from dropp.files.schemas import FileRead
from dropp.roles import service as roles_service
from dropp.storage.s3 import Storage
from dropp.uploads.errors import (
    EmailNotVerified,
    FileTooLarge,
    StorageVersioningDisabled,
    UploadAmbiguous,
    UploadExpired,
    UploadIncomplete,
    UploadNotFound,
    UploadSizeMismatch,
)
from dropp.uploads.schemas import PresignedForm, UploadCreate, UploadRead

DEFAULT_CONTENT_TYPE = "application/octet-stream"


def storage_key(owner_id: UUID) -> str:
    """Keys are made here, never from user input, so a name cannot address another object."""
    return f"u/{owner_id}/{uuid4().hex}"


def guess_content_type(filename: str) -> str:
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed or DEFAULT_CONTENT_TYPE


def check_may_upload(
    settings: Settings, principal: AccessClaims, body: UploadCreate, content_type: str
) -> int:
    """Apply the caller's verification and role policy; returns the largest size allowed.

    Decided from the access token's claims alone, so upload-init reads nothing more.
    """
    if settings.require_email_verification and not principal.email_verified:
        raise EmailNotVerified(
            "Verify your email address before uploading: open the link in the verification "
            "email Dropp sent you (you can ask for a new one), then refresh your tokens with "
            "POST /auth/refresh so your access token carries the verified address."
        )
    policy = settings.upload_policy(principal.role)
    roles_service.check_upload(policy, filename=body.filename, content_type=content_type)
    max_bytes = roles_service.size_limit(policy, settings.max_upload_bytes)
    if body.size is not None and body.size > max_bytes:
        raise FileTooLarge(
            f"The file is {body.size} bytes; the limit for your account is {max_bytes}.",
            max_bytes=max_bytes,
        )
    return max_bytes


async def start_upload(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    principal: AccessClaims,
    body: UploadCreate,
) -> UploadRead:
    """Record a pending revision and sign the form that lets the client POST its bytes."""
    # The policy judges the type the form will be signed with, not merely the name.
    content_type = body.content_type or guess_content_type(body.filename)
    max_bytes = check_may_upload(settings, principal, body, content_type)
    owner_id = principal.user_id
    folder_names = split_folder_path(body.folder or "")
    parent_id = await files_service.ensure_folder(session, owner_id, folder_names)
    expires_at = datetime.now(UTC) + timedelta(seconds=settings.upload_post_ttl_seconds)
    key = storage_key(owner_id)
    revision = await files_service.add_pending_revision(
        session,
        owner_id,
        parent_id,
        body.filename,
        files_service.NewRevision(
            storage_key=key,
            declared_size=body.size,
            content_type=content_type,
            upload_expires_at=expires_at,
        ),
    )
    form = await storage.presign_post(
        key,
        min_size=body.size if body.size is not None else 0,
        max_size=body.size if body.size is not None else max_bytes,
        content_type=content_type,
        expires_in=settings.upload_post_ttl_seconds,
    )
    return UploadRead(
        file_id=revision.file_id,
        upload_id=revision.id,
        content_type=content_type,
        upload=PresignedForm(url=form.url, fields=form.fields),
        expires_at=expires_at,
    )


async def complete_upload(
    session: AsyncSession, storage: Storage, owner_id: UUID, file_id: UUID, upload_id: UUID | None
) -> FileRead:
    """Make the upload the file's current revision if storage holds exactly what was declared.

    Idempotent: completing again reports the same outcome. The row lock makes concurrent calls
    produce a single transition.
    """
    revision = await files_service.lock_revision(session, owner_id, file_id, upload_id)
    if revision is None:
        raise UploadNotFound("There is no such upload.")
    if (
        revision.state == RevisionState.PENDING
        and upload_id is None
        and await files_service.count_pending(session, file_id) > 1
    ):
        raise UploadAmbiguous(
            "Several uploads of this file are pending: name one with `upload_id`."
        )
    match revision.state:
        case RevisionState.COMPLETE:
            return await files_service.read_file(session, file_id)
        case RevisionState.FAILED:
            raise _size_mismatch(revision, revision.size)
        case RevisionState.EXPIRED:
            raise UploadExpired("This upload expired before it was completed. Start a new one.")

    found = await storage.head(revision.storage_key)
    if found is None and revision.upload_expires_at <= datetime.now(UTC):
        # The form can no longer put bytes there: this upload will never complete.
        await files_service.expire_revision(session, revision)
        raise UploadExpired("This upload expired before its bytes arrived. Start a new one.")
    if found is None:
        raise UploadIncomplete(
            "Storage holds no bytes for this upload yet: POST the file to the upload form first.",
            upload_id=str(revision.id),
        )
    if revision.declared_size is not None and found.size != revision.declared_size:
        await files_service.fail_revision(session, revision, found.size)
        # Deleted before the commit; if that commit is lost, the revision stays pending with no
        # object, which expiry resolves.
        await storage.delete(revision.storage_key)
        raise _size_mismatch(revision, found.size)
    if found.version_id is None:
        raise StorageVersioningDisabled(
            "The storage bucket does not keep versions, so the upload cannot be pinned."
        )
    await files_service.complete_revision(
        session,
        revision,
        size=found.size,
        etag=found.etag,
        version_id=found.version_id,
        content_type=found.content_type,
    )
    return await files_service.read_file(session, file_id)


def _size_mismatch(revision: FileRevision, found_size: int | None) -> UploadSizeMismatch:
    return UploadSizeMismatch(
        f"Storage held {found_size} bytes but {revision.declared_size} were declared; "
        "the upload was discarded. Start a new one.",
        upload_id=str(revision.id),
        declared_size=revision.declared_size,
        actual_size=found_size,
    )
