import json
from contextlib import asynccontextmanager
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from dropp.auth.dependencies import CurrentPrincipal
from dropp.auth.errors import InvalidToken
from dropp.core.db import SessionDep, get_session
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import DroppError, NotAuthenticated, error_response, responses
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
    BatchItemRefused,
    ItemProblem,
    PartUrlsCreate,
    PartUrlsRead,
    StoredPartsRead,
    UploadBatchComplete,
    UploadBatchCompleted,
    UploadBatchCompleteRead,
    UploadBatchCreate,
    UploadBatchRead,
    UploadBatchStarted,
    UploadComplete,
    UploadCompleteRead,
    UploadCreate,
    UploadRead,
)
from dropp.uploads.service import Transaction

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


async def item_transactions(request: Request) -> Transaction:
    """Transactions for a batch's items, each exactly as a request's own session is."""
    return lambda: asynccontextmanager(get_session)(request)


ItemTransactions = Annotated[Transaction, Depends(item_transactions)]


async def _refusal(request: Request, error: Exception) -> BatchItemRefused:
    """What the single route answers for `error`, rendered as the app renders it there."""
    if isinstance(error, ValidationError):
        # As FastAPI reports a body's errors, under `body`, for the app's own handler.
        located = [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        handler = request.app.exception_handlers[RequestValidationError]
        response = await handler(request, RequestValidationError(located))
    else:
        assert isinstance(error, DroppError)
        response = error_response(error)
    problem: dict[str, Any] = json.loads(response.body)
    return BatchItemRefused(status=response.status_code, error=ItemProblem(**problem))


# Before /{file_id}/...: "batch" would otherwise be taken for a file id.
@router.post(
    "/batch",
    responses=responses(InvalidIdempotencyKey, IdempotencyKeyReused, IdempotencyKeyInFlight),
)
async def start_uploads(
    body: UploadBatchCreate,
    principal: CurrentPrincipal,
    idempotency: IdempotencyClaim,
    transaction: ItemTransactions,
    storage: StorageDep,
    settings: SettingsDep,
    request: Request,
) -> UploadBatchRead:
    """Start up to 100 uploads in one call: each item is the body of POST /upload/.

    Each item is decided on its own, in its own transaction, by POST /upload/'s rules, and
    answered in order: `{status: 201 | 200, upload}` with exactly what POST /upload/ answers,
    or `{status, error}` with the problem it answers (a 422 for an item that is not a valid
    body, 413 `quota_exceeded`, 403 `email_not_verified`, ...). A refused item stores
    nothing and undoes no other. With an `Idempotency-Key`, a retry of the same batch gets
    the first answer.
    """
    bodies: list[UploadCreate] = []
    invalid: dict[int, BatchItemRefused] = {}
    for index, item in enumerate(body.items):
        if isinstance(item, UploadCreate):
            bodies.append(item)
            continue
        try:
            # Valid items were parsed as UploadCreate already: this one is refused, and the
            # error says why as POST /upload/ would.
            bodies.append(UploadCreate.model_validate(item))
        except ValidationError as error:
            invalid[index] = await _refusal(request, error)
    answers = iter(await service.start_uploads(transaction, storage, settings, principal, bodies))
    items: list[UploadBatchStarted | BatchItemRefused] = []
    for index in range(len(body.items)):
        if index in invalid:
            items.append(invalid[index])
            continue
        answer = next(answers)
        if isinstance(answer, UploadRead):
            code = status.HTTP_200_OK if answer.status == "complete" else status.HTTP_201_CREATED
            items.append(UploadBatchStarted(status=code, upload=answer))
        else:
            items.append(await _refusal(request, answer))
    batch = UploadBatchRead(items=items)
    if idempotency is not None:
        async with transaction() as session:
            await idempotency_service.record(session, idempotency, status.HTTP_200_OK, batch)
    return batch


@router.post("/batch/complete")
async def complete_uploads(
    body: UploadBatchComplete,
    principal: CurrentPrincipal,
    transaction: ItemTransactions,
    storage: StorageDep,
    request: Request,
) -> UploadBatchCompleteRead:
    """Complete up to 100 uploads in one call, each as POST /upload/{file_id}/complete would
    without `parts` (a multipart upload is assembled from the parts storage holds).

    Each item is decided on its own, in its own transaction, and answered in order:
    `{status: 200, file}` with exactly what the single route answers, or `{status, error}`
    with the problem it answers (404 `upload_not_found` for a file that is not yours, 409
    `upload_incomplete` while storage holds no bytes, ...).
    """
    answers = await service.complete_uploads(transaction, storage, principal.user_id, body.items)
    items: list[UploadBatchCompleted | BatchItemRefused] = [
        UploadBatchCompleted(file=answer)
        if isinstance(answer, FileRead)
        else await _refusal(request, answer)
        for answer in answers
    ]
    return UploadBatchCompleteRead(items=items)


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
