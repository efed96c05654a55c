"""Upload sessions: sign a storage form for a pending revision, then complete it from what
storage reports. File bytes never pass through here."""

import asyncio
import contextlib
import mimetypes
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.auth.tokens import AccessClaims
from dropp.core.config import Settings
from dropp.core.errors import DroppError
from dropp.files import conflicts, locks
from dropp.files import expiry as file_expiry
from dropp.files import service as files_service
from dropp.files.models import FileRevision, Node, NodeKind, RevisionState
from dropp.files.names import existing_path_names, name_key, split_folder_path
from dropp.files.revision_errors import RevisionConflictDiscarded
from dropp.files.schemas import FileRead
from dropp.observability.metrics import UPLOAD_BYTES_DECLARED, UPLOADS_STARTED
from dropp.quotas import service as quotas_service
from dropp.roles import service as roles_service
from dropp.sharing import access as sharing_access
from dropp.sharing.people_errors import ShareTargetMismatch
from dropp.storage.s3 import ObjectHead, Storage, StorageError, b64_sha256
from dropp.uploads import multipart, pending
from dropp.uploads.errors import (
    EmailNotVerified,
    FileTooLarge,
    StorageVersioningDisabled,
    UploadAlreadyComplete,
    UploadChecksumMismatch,
    UploadExpired,
    UploadFailed,
    UploadIncomplete,
    UploadSizeMismatch,
)
from dropp.uploads.hashing import part_count_for, part_size_for
from dropp.uploads.lookup import locate_upload, pending_post_keys
from dropp.uploads.schemas import (
    ConflictRead,
    MultipartPlan,
    PartRef,
    PresignedForm,
    UploadBatchCompleteItem,
    UploadCompleteRead,
    UploadCreate,
    UploadRead,
)

DEFAULT_CONTENT_TYPE = "application/octet-stream"
# Storage requests of one batch complete in flight at once.
HEADS_AT_ONCE = 16
SINGLE_POST_MAX_BYTES = 5 * 1024**3


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


async def _upload_folder(
    session: AsyncSession, user_id: UUID, body: UploadCreate
) -> tuple[UUID, UUID | None]:
    """Whose tree the upload goes to, and its folder there (None: the top level), created
    where missing. The owner's tree lock is shared from here to the commit."""
    folder_names = split_folder_path(body.folder or "")
    if body.share_id is None:
        if not folder_names:
            # The lock keeps a folder from going to the trash under a new file; at the top
            # level there is no folder, and one statement fewer per upload.
            return user_id, None
        await locks.share_tree(session, user_id)
        return user_id, await files_service.ensure_folder(session, user_id, folder_names)
    owner_id = await sharing_access.grant_owner(session, body.share_id)
    # Locked before access is checked, so the shared node cannot move or go to the trash
    # between the check and the upload.
    await locks.share_tree(session, owner_id)
    root = await sharing_access.editable_node(session, user_id, body.share_id)
    if root.kind == NodeKind.FILE:
        if folder_names or name_key(body.filename) != name_key(root.name):
            raise ShareTargetMismatch(
                f"This share is one file: upload its new revisions as {root.name!r}, "
                "without `folder`."
            )
        return owner_id, root.parent_id
    root_names = existing_path_names(await files_service.node_path(session, root))
    return owner_id, await files_service.ensure_folder(
        session, owner_id, [*root_names, *folder_names]
    )


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
    if body.size is None:
        # One S3 POST carries at most 5 GiB: a larger file declares its size and goes multipart.
        max_bytes = min(max_bytes, SINGLE_POST_MAX_BYTES)
    owner_id, parent_id = await _upload_folder(session, principal.user_id, body)
    sha256 = bytes.fromhex(body.sha256) if body.sha256 is not None else None
    part_size = None
    if body.size is not None and (body.multipart or body.size > settings.multipart_threshold_bytes):
        part_size = part_size_for(body.size)
    if sha256 is not None:
        current = await files_service.current_revision_at(
            session, owner_id, parent_id, body.filename
        )
        if current is not None and (current.sha256, current.part_size, current.size) == (
            sha256,
            part_size,
            body.size,
        ):
            # The file already holds these bytes: no new revision, nothing to upload.
            return UploadRead(
                file_id=current.node_id,
                upload_id=current.id,
                status="complete",
                content_type=current.content_type,
                upload=None,
                expires_at=None,
            )
    # --- sync conflicts: `fail` answers before any bytes are sent (complete judges again) ---
    await conflicts.check_at_init(
        session, owner_id, parent_id, body.filename, body.base_revision, body.conflict
    )
    # --- end sync conflicts ---
    window = (
        settings.upload_post_ttl_seconds
        if part_size is None
        else settings.multipart_upload_ttl_seconds
    )
    expires_at = datetime.now(UTC) + timedelta(seconds=window)
    file_expires_at = file_expiry.file_expires_at(settings, body.expires_in, datetime.now(UTC))
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
    if file_expires_at is not None:
        await files_service.set_expiry(session, revision.file_id, file_expires_at)
    await conflicts.set_sync_details(
        session,
        revision.id,
        device=body.device,
        base_revision_id=body.base_revision,
        mode=body.conflict,
    )
    if owner_id != principal.user_id:
        await session.execute(
            update(FileRevision)
            .where(FileRevision.id == revision.id)
            .values(uploaded_by=principal.user_id)
            .execution_options(synchronize_session=False)
        )
    # Quota: the revision holds its declared size, or without one the most the form may take
    # (capped at what the quota leaves), until it completes, fails, expires or is deleted.
    max_bytes = await quotas_service.reserve_upload(
        session, settings, owner_id, revision.id, size=body.size, max_bytes=max_bytes
    )
    await pending.check_pending_caps(session, settings, owner_id)
    upload: PresignedForm | MultipartPlan
    if body.size is not None and part_size is not None:
        # Every part is signed for its SHA-256, so storage checks each part's bytes.
        storage_upload_id = await storage.create_multipart(
            key, content_type=content_type, checksums=True
        )
        await files_service.set_upload_details(
            session,
            revision.id,
            sha256=sha256,
            multipart_upload_id=storage_upload_id,
            part_size=part_size,
        )
        upload = MultipartPlan(part_size=part_size, part_count=part_count_for(body.size, part_size))
    else:
        if sha256 is not None:
            await files_service.set_upload_details(
                session, revision.id, sha256=sha256, multipart_upload_id=None, part_size=None
            )
        form = await storage.presign_post(
            key,
            min_size=body.size if body.size is not None else 0,
            max_size=body.size if body.size is not None else max_bytes,
            content_type=content_type,
            expires_in=settings.upload_post_ttl_seconds,
            sha256=sha256,
        )
        upload = PresignedForm(url=form.url, fields=form.fields)
    UPLOADS_STARTED.inc()
    UPLOAD_BYTES_DECLARED.inc(body.size or 0)
    return UploadRead(
        file_id=revision.file_id,
        upload_id=revision.id,
        content_type=content_type,
        upload=upload,
        expires_at=expires_at,
    )


async def complete_upload(
    session: AsyncSession,
    storage: Storage,
    owner_id: UUID,
    file_id: UUID,
    upload_id: UUID | None,
    parts: list[PartRef] | None = None,
    *,
    release_for_storage: bool = False,
    asked_ahead: Mapping[UUID, ObjectHead | None] | None = None,
) -> FileRead:
    """Make the upload the file's current revision if storage holds exactly what was declared.

    Idempotent: completing again reports the same outcome. The row lock makes concurrent calls
    produce a single transition. An upload whose `base_revision` is no longer the file's
    current one is a conflict, settled by its mode (see `_settle_conflict`).

    With `release_for_storage` (a session holding nothing else of the caller's), storage is
    asked before the row lock is taken, with no pooled connection held meanwhile.
    `asked_ahead` holds what storage answered before this transaction began for single-POST
    uploads, by revision id: the same answer, taken earlier.
    """
    revision = await locate_upload(session, owner_id, file_id, upload_id)
    found: ObjectHead | None = None
    asked = False
    if asked_ahead is not None and revision.id in asked_ahead:
        found, asked = asked_ahead[revision.id], True
    elif (
        release_for_storage
        and revision.state == RevisionState.PENDING
        and revision.multipart_upload_id is None
    ):
        # Frozen storage held a database connection (and this row's lock) for minutes: ending
        # the transaction hands both back while storage is asked. The lock is then taken again
        # and the state re-checked, so concurrent completes still make a single transition;
        # the HEAD names the version that gets pinned, so bytes posted again in between are
        # not pinned unseen.
        key, revision_id, wants_checksum = (
            revision.storage_key,
            revision.id,
            revision.sha256 is not None,
        )
        await session.rollback()
        found = await storage.head(key, checksum=wants_checksum)
        asked = True
        revision = await locate_upload(session, owner_id, file_id, revision_id)
    match revision.state:
        case RevisionState.COMPLETE:
            return await files_service.read_file(session, file_id)
        case RevisionState.FAILED if revision.size == revision.declared_size:
            raise UploadFailed(
                "This upload failed its checks (part sizes or SHA-256). Start a new one.",
                upload_id=str(revision.id),
            )
        case RevisionState.FAILED:
            raise _size_mismatch(revision, revision.size)
        case RevisionState.EXPIRED:
            raise UploadExpired("This upload expired before it was completed. Start a new one.")

    if revision.multipart_upload_id is not None:
        found = await multipart.assemble(session, storage, revision, parts)
    elif not asked:
        found = await storage.head(revision.storage_key, checksum=revision.sha256 is not None)
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
    if _checksum_differs(revision, found):
        await files_service.fail_revision(session, revision, found.size)
        await storage.delete(revision.storage_key)
        raise UploadChecksumMismatch(
            "Storage reports another SHA-256 than the one declared; the upload was discarded. "
            "Start a new one.",
            upload_id=str(revision.id),
        )
    if found.version_id is None:
        raise StorageVersioningDisabled(
            "The storage bucket does not keep versions, so the upload cannot be pinned."
        )
    if await _duplicates_current(session, revision, found):
        # Identical bytes again: the file stays as it is and this upload leaves nothing behind.
        await files_service.discard_revision(session, revision)
        await storage.delete(revision.storage_key)
        return await files_service.read_file(session, file_id)
    # The file row is locked (by `locate_upload`), so a trash either finished before this
    # point or waits for the commit. A file trashed while its upload was pending keeps the
    # new bytes, in the trash: nothing against a live file to judge, nothing for the feed.
    node = await session.get_one(Node, revision.node_id)
    in_trash = node.trashed_at is not None
    conflict = None if in_trash else await _settle_conflict(session, storage, revision)
    await files_service.complete_revision(
        session,
        revision,
        size=found.size,
        etag=found.etag,
        version_id=found.version_id,
        content_type=found.content_type,
    )
    read = await files_service.read_file(session, revision.node_id)
    if conflict is None and not in_trash:
        return read
    return UploadCompleteRead(**read.model_dump(), conflict=conflict, in_trash=in_trash)


async def as_seen_by(session: AsyncSession, user_id: UUID, read: FileRead) -> FileRead:
    """The answer with the file's path as the caller sees it: an editor of a share sees the
    path inside the share, never where the file is in its owner's tree."""
    node = await session.get(Node, read.file_id)
    if node is None or node.owner_id == user_id:
        return read
    share = await sharing_access.shared_access(session, user_id, read.file_id)
    return read.model_copy(update={"path": share.path if share else f"/{read.name}"})


# --- sync conflicts -------------------------------------------------------------------------


async def _settle_conflict(
    session: AsyncSession, storage: Storage, revision: FileRevision
) -> ConflictRead | None:
    """Judge the upload against the file's current revision, under the file's row lock (taken
    by `locate_upload`), so of two uploads from one base exactly one finds it unchanged.

    `fail`: the upload is discarded and 409. `keep_both`: its revision moves to a conflicted
    copy beside the file, returned. `overwrite`, no base, or no change: None, complete as usual.
    """
    node = await session.get(Node, revision.node_id)
    assert node is not None
    if not conflicts.is_stale(node.current_revision_id, revision.base_revision_id):
        return None
    assert node.current_revision_id is not None
    match revision.conflict_mode:
        case conflicts.ConflictMode.FAIL:
            await files_service.discard_revision(session, revision)
            # Gone from the session too, so a caller holding it (the sweeper) writes no more.
            session.expunge(revision)
            await storage.delete(revision.storage_key)
            raise conflicts.conflict_error(RevisionConflictDiscarded, node.current_revision_id)
        case conflicts.ConflictMode.KEEP_BOTH:
            await conflicts.move_to_conflicted_copy(
                session, node, revision, datetime.now(UTC).date()
            )
            return ConflictRead(original_file_id=node.id, current_revision=node.current_revision_id)
    return None


# --- end sync conflicts ---------------------------------------------------------------------


def _checksum_differs(revision: FileRevision, found: ObjectHead) -> bool:
    """Storage's own SHA-256 of a single upload against the declared one. Storage refused other
    bytes at upload already; this covers a storage that ignored the form's checksum field.
    Multipart uploads were checked part by part in `multipart.assemble`."""
    if revision.sha256 is None or found.checksum_sha256 is None or revision.part_size is not None:
        return False
    return found.checksum_sha256 != b64_sha256(revision.sha256)


async def _duplicates_current(
    session: AsyncSession, revision: FileRevision, found: ObjectHead
) -> bool:
    """Whether the file already serves a revision with the same verified content hash."""
    if revision.sha256 is None:
        return False
    # The file row is in the session already, locked by `locate_upload`.
    node = await session.get(Node, revision.node_id)
    assert node is not None
    current = await files_service.get_current_revision(session, node)
    return (
        current is not None
        and current.id != revision.id
        and (current.sha256, current.part_size, current.size)
        == (revision.sha256, revision.part_size, found.size)
    )


@dataclass(frozen=True, slots=True)
class Cleanup:
    """What storage must drop once the cancellation is committed."""

    keys: list[str]
    multipart: list[tuple[str, str]]


async def cancel_upload(
    session: AsyncSession, owner_id: UUID, file_id: UUID, upload_id: UUID | None
) -> Cleanup:
    """Remove a pending (or failed, or expired) upload, and its file if it has nothing else.

    Returns what storage holds for it, to delete once the rows are gone.
    """
    revision = await locate_upload(session, owner_id, file_id, upload_id)
    if revision.state == RevisionState.COMPLETE:
        raise UploadAlreadyComplete(
            "This upload is complete: delete the file instead.", upload_id=str(revision.id)
        )
    keys = [revision.storage_key]
    aborts = []
    if revision.multipart_upload_id is not None:
        aborts.append((revision.storage_key, revision.multipart_upload_id))
    if not await files_service.discard_revision(session, revision):
        # Locked and checked by `locate_upload`; possibly in the trash, which does not
        # change what cancelling does.
        node = await session.get_one(Node, revision.node_id)
        keys += await files_service.delete_file(session, node)
    return Cleanup(keys=keys, multipart=aborts)


# --- batches ---------------------------------------------------------------------------------

# A transaction as a request's own session has it: committed at the end, or on an error
# that persists its changes (a failed upload), else rolled back.
Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]


async def start_uploads(
    transaction: Transaction,
    storage: Storage,
    settings: Settings,
    principal: AccessClaims,
    bodies: Sequence[UploadCreate],
) -> list[UploadRead | DroppError]:
    """`start_upload` for each body in order, each in a transaction of its own: one refused
    stores nothing and undoes none of the others. Each answer, or the error refusing it."""
    answers: list[UploadRead | DroppError] = []
    for body in bodies:
        try:
            async with transaction() as session:
                answer = await start_upload(session, storage, settings, principal, body)
        except DroppError as error:
            answers.append(error)
        else:
            answers.append(answer)
    return answers


async def complete_uploads(
    transaction: Transaction,
    storage: Storage,
    user_id: UUID,
    items: Sequence[UploadBatchCompleteItem],
) -> list[FileRead | DroppError]:
    """`complete_upload` for each item in order (multipart ones from the parts storage holds),
    each in a transaction of its own; each file as the caller sees it, or the error.

    Storage is asked about the single-POST uploads all at once first, outside any
    transaction: one after another, a hundred HEADs were most of a batch's time.
    """
    async with transaction() as session:
        keys = await pending_post_keys(session, user_id, [(i.file_id, i.upload_id) for i in items])
    asked_ahead = await _heads(storage, keys)
    answers: list[FileRead | DroppError] = []
    for item in items:
        try:
            async with transaction() as session:
                read = await complete_upload(
                    session,
                    storage,
                    user_id,
                    item.file_id,
                    item.upload_id,
                    release_for_storage=True,
                    asked_ahead=asked_ahead,
                )
                answer = await as_seen_by(session, user_id, read)
        except DroppError as error:
            answers.append(error)
        else:
            answers.append(answer)
    return answers


async def _heads(
    storage: Storage, keys: Mapping[UUID, tuple[str, bool]]
) -> dict[UUID, ObjectHead | None]:
    """Storage's answer for each key, HEADS_AT_ONCE at a time; one it could not give is left
    out, for its item to ask again (and report) on its own."""
    gate = asyncio.Semaphore(HEADS_AT_ONCE)
    answers: dict[UUID, ObjectHead | None] = {}

    async def head(revision_id: UUID, key: str, checksum: bool) -> None:
        async with gate:
            with contextlib.suppress(StorageError, DroppError):
                answers[revision_id] = await storage.head(key, checksum=checksum)

    await asyncio.gather(*(head(rid, key, checksum) for rid, (key, checksum) in keys.items()))
    return answers


def _size_mismatch(revision: FileRevision, found_size: int | None) -> UploadSizeMismatch:
    return UploadSizeMismatch(
        f"Storage held {found_size} bytes but {revision.declared_size} were declared; "
        "the upload was discarded. Start a new one.",
        upload_id=str(revision.id),
        declared_size=revision.declared_size,
        actual_size=found_size,
    )
