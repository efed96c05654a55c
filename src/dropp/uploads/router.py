from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Query, Response, status

from dropp.auth.dependencies import CurrentPrincipal
from dropp.auth.errors import InvalidToken
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import NotAuthenticated, responses
from dropp.files.errors import NameTaken, NotAFolder
from dropp.files.revision_errors import RevisionConflict
from dropp.files.schemas import FileRead
from dropp.idempotency import service as idempotency_service
from dropp.idempotency.dependencies import IdempotencyClaim
from dropp.idempotency.errors import (
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
)
from dropp.quotas.errors import QuotaExceeded
from dropp.roles.errors import FileTypeNotAllowed, UploadNotAllowed
from dropp.sharing.people_errors import GrantNotFound, ShareReadOnly, ShareTargetMismatch
from dropp.storage.dependencies import StorageDep
from dropp.uploads import multipart, service
from dropp.uploads.errors import (
    EmailNotVerified,
    FileTooLarge,
    PartChecksumConflict,
    PartChecksumRequired,
    PartNumberOutOfRange,
    StorageVersioningDisabled,
    UploadAlreadyComplete,
    UploadAmbiguous,
    UploadChecksumMismatch,
    UploadExpired,
    UploadFailed,
    UploadIncomplete,
    UploadNotFound,
    UploadNotMultipart,
    UploadPartSizeMismatch,
    UploadPartsMismatch,
    UploadSizeMismatch,
)
from dropp.uploads.pending import TooManyPendingUploads
from dropp.uploads.schemas import (
    PartUrlsCreate,
    PartUrlsRead,
    StoredPartsRead,
    UploadComplete,
    UploadCompleteRead,
    UploadCreate,
    UploadRead,
)

router = APIRouter(
    prefix="/upload", tags=["uploads"], responses=responses(NotAuthenticated, InvalidToken)
)


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": UploadRead, "description": "The file already holds these bytes."},
        **responses(
            EmailNotVerified,
            UploadNotAllowed,
            FileTypeNotAllowed,
            FileTooLarge,
            QuotaExceeded,
            TooManyPendingUploads,
            NameTaken,
            NotAFolder,
            InvalidIdempotencyKey,
            IdempotencyKeyReused,
            IdempotencyKeyInFlight,
            RevisionConflict,
            GrantNotFound,
            ShareReadOnly,
            ShareTargetMismatch,
        ),
    },
)
async def start_upload(
    body: UploadCreate,
    principal: CurrentPrincipal,
    # Before the session: its claim is released if anything fails, the commit included.
    idempotency: IdempotencyClaim,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    response: Response,
) -> UploadRead:
    """Start an upload: POST the file to `upload.url` with `upload.fields`, then complete it.

    Above MULTIPART_THRESHOLD_BYTES (or with `multipart`), `upload` is a multipart plan: get
    part URLs from POST /upload/{file_id}/parts. With `sha256` equal to the file's current
    bytes, nothing is started: 200 with `status: "complete"` and `upload: null`.

    Needs a verified email (unless REQUIRE_EMAIL_VERIFICATION is off) and a role whose upload
    policy admits the file's name, type and size. With an `Idempotency-Key`, a retry gets the
    first answer (the same upload) instead of starting another.

    With `share_id`, the upload goes into a file or folder shared with you as `editor`, in
    its owner's files and against the owner's quota; your own role's policy still applies.
    You complete, list parts of and cancel it with the routes below, as for your own files,
    while you remain an editor there.
    """
    answer = await service.start_upload(session, storage, settings, principal, body)
    if answer.status == "complete":
        response.status_code = status.HTTP_200_OK
    await idempotency_service.record(session, idempotency, response.status_code or 201, answer)
    return answer


@router.post(
    "/{file_id}/parts",
    responses=responses(
        UploadNotFound,
        UploadAmbiguous,
        UploadNotMultipart,
        UploadAlreadyComplete,
        UploadFailed,
        UploadExpired,
        PartChecksumConflict,
        PartNumberOutOfRange,
        PartChecksumRequired,
    ),
)
async def sign_parts(
    file_id: UUID,
    body: PartUrlsCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
) -> PartUrlsRead:
    """PUT URLs for parts of a multipart upload (up to 100 per call); send each part with the
    headers given. A part with a `sha256` is accepted by storage only with exactly those bytes."""
    return await multipart.sign_parts(session, storage, settings, principal.user_id, file_id, body)


@router.get(
    "/{file_id}/parts",
    responses=responses(
        UploadNotFound,
        UploadAmbiguous,
        UploadNotMultipart,
        UploadAlreadyComplete,
        UploadFailed,
        UploadExpired,
    ),
)
async def list_parts(
    file_id: UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    storage: StorageDep,
    upload_id: UUID | None = None,
) -> StoredPartsRead:
    """The parts storage holds for a multipart upload, to resume it after an interruption."""
    return await multipart.list_stored_parts(
        session, storage, principal.user_id, file_id, upload_id
    )


@router.delete(
    "/{file_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(UploadNotFound, UploadAmbiguous, UploadAlreadyComplete),
)
async def cancel_upload(
    file_id: UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    storage: StorageDep,
    upload_id: Annotated[UUID | None, Query()] = None,
) -> Response:
    """Cancel an upload that is not complete: storage drops its bytes or parts, and a file
    that has nothing else is removed."""
    cleanup = await service.cancel_upload(session, principal.user_id, file_id, upload_id)
    # Rows go first: a crash between the two leaves unreferenced bytes for the sweeper, never
    # rows that point at missing bytes.
    await session.commit()
    for key, storage_upload_id in cleanup.multipart:
        await storage.abort_multipart_upload(key, storage_upload_id)
    for key in cleanup.keys:
        await storage.delete(key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{file_id}/complete",
    # Not a response model: only a conflicted copy's answer has `conflict`, every other is
    # exactly GET /files/{id}'s.
    response_model=None,
    responses={
        200: {"model": UploadCompleteRead, "description": "The file; `conflict` if a copy."},
        **responses(
            UploadNotFound,
            UploadAmbiguous,
            UploadIncomplete,
            UploadSizeMismatch,
            UploadPartSizeMismatch,
            UploadPartsMismatch,
            UploadChecksumMismatch,
            UploadFailed,
            UploadExpired,
            StorageVersioningDisabled,
            RevisionConflict,
        ),
    },
)
async def complete_upload(
    file_id: UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    storage: StorageDep,
    body: Annotated[UploadComplete | None, Body()] = None,
) -> FileRead:
    """Finish an upload once its bytes are in storage; storage's size is the one that counts.

    A multipart upload is assembled from the parts storage holds, after checking their sizes
    and declared SHA-256s; on a mismatch it is aborted and nothing stays in storage.
    """
    upload_id = body.upload_id if body else None
    parts = body.parts if body else None
    read = await service.complete_upload(
        session, storage, principal.user_id, file_id, upload_id, parts, release_for_storage=True
    )
    return await service.as_seen_by(session, principal.user_id, read)
