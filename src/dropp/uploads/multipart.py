"""Multipart uploads: part URLs signed for each part's SHA-256, and assembly checked against
what storage holds. File bytes never pass through here."""

from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from dropp.core.config import Settings
from dropp.core.errors import DroppError
from dropp.files import service as files_service
from dropp.files.models import FileRevision, RevisionState
from dropp.storage.s3 import ObjectHead, PartsRefused, PartToAssemble, Storage, b64_sha256
from dropp.uploads.errors import (
    PartChecksumConflict,
    PartChecksumRequired,
    PartNumberOutOfRange,
    UploadAlreadyComplete,
    UploadChecksumMismatch,
    UploadExpired,
    UploadFailed,
    UploadIncomplete,
    UploadNotMultipart,
    UploadPartSizeMismatch,
    UploadPartsMismatch,
    UploadSizeMismatch,
)
from dropp.uploads.hashing import expected_part_size, part_count_for, parts_hash
from dropp.uploads.lookup import locate_upload
from dropp.uploads.schemas import (
    PartRef,
    PartUrl,
    PartUrlsCreate,
    PartUrlsRead,
    StoredPartRead,
    StoredPartsRead,
)


def _require_pending_multipart(revision: FileRevision) -> tuple[str, int, int]:
    """Storage's upload id, the part size and the declared size of a pending multipart upload."""
    match revision.state:
        case RevisionState.COMPLETE:
            raise UploadAlreadyComplete("This upload is complete.", upload_id=str(revision.id))
        case RevisionState.FAILED:
            raise UploadFailed("This upload failed its checks. Start a new one.")
        case RevisionState.EXPIRED:
            raise UploadExpired("This upload expired before it was completed. Start a new one.")
    if (
        revision.multipart_upload_id is None
        or revision.part_size is None
        or revision.declared_size is None
    ):
        raise UploadNotMultipart(
            "This upload is a single POST to its form; it has no parts.",
            upload_id=str(revision.id),
        )
    return revision.multipart_upload_id, revision.part_size, revision.declared_size


async def sign_parts(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    owner_id: UUID,
    file_id: UUID,
    body: PartUrlsCreate,
) -> PartUrlsRead:
    """PUT URLs for these parts, each signed for the part's exact size and its SHA-256."""
    revision = await locate_upload(session, owner_id, file_id, body.upload_id)
    upload_id, part_size, size = _require_pending_multipart(revision)
    now = datetime.now(UTC)
    remaining = int((revision.upload_expires_at - now).total_seconds())
    if remaining < 1:
        raise UploadExpired("This upload's window has ended: no more parts can be sent.")
    part_count = part_count_for(size, part_size)
    beyond = sorted({n for n in (*body.part_numbers, *body.sha256) if n > part_count})
    if beyond:
        raise PartNumberOutOfRange(
            f"This upload has {part_count} parts, numbered from 1.",
            part_count=part_count,
            part_numbers=beyond,
        )
    declared = {n: bytes.fromhex(digest) for n, digest in body.sha256.items()}
    # Every URL is signed for its part's exact length and SHA-256, so storage takes nothing
    # else for it: without a hash a URL could carry other bytes, and they would sit in
    # storage for the upload's whole window until complete refused them. A part whose hash
    # was recorded by an earlier call may leave it out.
    recorded = await files_service.part_hashes(session, revision.id, numbers=body.part_numbers)
    unhashed = [n for n in body.part_numbers if n not in declared and n not in recorded]
    if unhashed:
        raise PartChecksumRequired(
            "Every part URL is signed for that part's SHA-256: give `sha256` for each part.",
            part_numbers=unhashed,
        )
    await files_service.record_part_hashes(session, revision.id, declared)
    # Every URL ever signed for a part carries the same hash, so what storage holds for that
    # part is what the recorded hash says.
    recorded = await files_service.part_hashes(
        session, revision.id, numbers=[*body.part_numbers, *declared]
    )
    changed = [n for n, digest in declared.items() if recorded[n] != digest]
    if changed:
        raise PartChecksumConflict(
            "A part's SHA-256 cannot change once given: these parts were declared with "
            "another hash.",
            part_numbers=changed,
        )
    expires_in = min(settings.upload_post_ttl_seconds, remaining)
    parts = []
    for number in body.part_numbers:
        part_bytes = expected_part_size(size, part_size, number)
        url, headers = await storage.presign_part(
            revision.storage_key,
            upload_id,
            number,
            size=part_bytes,
            sha256=recorded[number],
            expires_in=expires_in,
        )
        parts.append(PartUrl(part_number=number, url=url, headers=headers, size=part_bytes))
    return PartUrlsRead(
        upload_id=revision.id, parts=parts, expires_at=now + timedelta(seconds=expires_in)
    )


async def list_stored_parts(
    session: AsyncSession, storage: Storage, owner_id: UUID, file_id: UUID, upload_id: UUID | None
) -> StoredPartsRead:
    """The parts storage holds, to resume an interrupted upload."""
    revision = await locate_upload(session, owner_id, file_id, upload_id)
    storage_upload_id, part_size, size = _require_pending_multipart(revision)
    stored = await storage.list_parts(revision.storage_key, storage_upload_id) or []
    return StoredPartsRead(
        upload_id=revision.id,
        part_size=part_size,
        part_count=part_count_for(size, part_size),
        parts=[StoredPartRead(part_number=p.part_number, etag=p.etag, size=p.size) for p in stored],
    )


async def _refuse(
    session: AsyncSession, storage: Storage, revision: FileRevision, total: int, error: DroppError
) -> DroppError:
    """Abort the upload in storage, record the revision failed, and hand back the error."""
    assert revision.multipart_upload_id is not None
    # Aborted before the commit; if that commit is lost, the revision stays pending with no
    # upload in storage, which expiry resolves.
    await storage.abort_multipart_upload(revision.storage_key, revision.multipart_upload_id)
    await files_service.fail_revision(session, revision, total)
    return error


async def assemble(
    session: AsyncSession,
    storage: Storage,
    revision: FileRevision,
    client_parts: list[PartRef] | None,
) -> ObjectHead | None:
    """Check the parts storage holds against the plan and the declared hashes, then have
    storage assemble them. Returns the object, or None if storage holds neither parts nor an
    object; raises the problem otherwise (recording the revision failed where it is final)."""
    upload_id, part_size, size = _require_pending_multipart(revision)
    key = revision.storage_key
    stored = await storage.list_parts(key, upload_id)
    if stored is None:
        # Storage no longer knows the upload: assembled by an earlier complete whose commit was
        # lost (the checks below passed then), or aborted.
        found = await storage.head(key, checksum=True)
        if found is not None and revision.sha256 is None:
            hashes = await files_service.part_hashes(session, revision.id)
            revision.sha256 = parts_hash(
                hashes[n] for n in range(1, part_count_for(size, part_size) + 1)
            )
        return found
    if client_parts is not None:
        theirs = {(p.part_number, p.etag.strip('"')) for p in client_parts}
        if theirs != {(p.part_number, p.etag) for p in stored}:
            raise UploadPartsMismatch(
                "Storage holds other parts than those listed: GET the parts and send the "
                "missing or changed ones again.",
                upload_id=str(revision.id),
            )
    part_count = part_count_for(size, part_size)
    numbers = {p.part_number for p in stored}
    missing = [n for n in range(1, part_count + 1) if n not in numbers]
    total = sum(p.size for p in stored)
    if missing:
        if revision.upload_expires_at <= datetime.now(UTC):
            await storage.abort_multipart_upload(key, upload_id)
            await files_service.expire_revision(session, revision)
            raise UploadExpired("This upload expired before all its parts arrived.")
        raise UploadIncomplete(
            f"Storage holds {len(numbers)} of the {part_count} parts: send the missing ones.",
            upload_id=str(revision.id),
            missing_parts=missing[:100],
        )
    if total != size:
        raise await _refuse(
            session,
            storage,
            revision,
            total,
            UploadSizeMismatch(
                f"Storage held {total} bytes but {size} were declared; the upload was "
                "discarded. Start a new one.",
                upload_id=str(revision.id),
                declared_size=size,
                actual_size=total,
            ),
        )
    wrong = [
        p.part_number
        for p in stored
        if p.part_number > part_count
        or p.size != expected_part_size(size, part_size, p.part_number)
    ]
    if wrong:
        raise await _refuse(
            session,
            storage,
            revision,
            total,
            UploadPartSizeMismatch(
                f"Every part but the last must be exactly {part_size} bytes; these parts are "
                "not. The upload was discarded. Start a new one.",
                upload_id=str(revision.id),
                part_size=part_size,
                part_numbers=wrong[:100],
            ),
        )
    # Every part was signed for its hash, so every stored part has one recorded.
    hashes = await files_service.part_hashes(session, revision.id)
    from_parts = parts_hash(hashes.get(n, b"") for n in range(1, part_count + 1))
    if revision.sha256 is None:
        # Undeclared at init (a client that hashes each part as it sends it): the parts'
        # hashes, each checked by storage, make the content hash all the same.
        revision.sha256 = from_parts
    elif from_parts != revision.sha256:
        raise await _refuse(
            session, storage, revision, total, _hash_mismatch(revision, "the parts' hashes")
        )
    try:
        await storage.complete_multipart(
            key,
            upload_id,
            [PartToAssemble(p.part_number, p.etag, hashes.get(p.part_number)) for p in stored],
        )
    except PartsRefused as refused:
        raise await _refuse(
            session, storage, revision, total, _hash_mismatch(revision, f"storage ({refused.code})")
        ) from refused
    found = await storage.head(key, checksum=True)
    if found is not None and revision.sha256 is not None and found.checksum_sha256 is not None:
        # S3's composite checksum for a SHA-256 multipart upload is exactly the parts hash.
        reported = found.checksum_sha256.split("-", 1)[0]
        if reported != b64_sha256(revision.sha256):
            await storage.delete(key)
            await files_service.fail_revision(session, revision, found.size)
            raise _hash_mismatch(revision, "storage's composite checksum")
    return found


def _hash_mismatch(revision: FileRevision, source: str) -> UploadChecksumMismatch:
    return UploadChecksumMismatch(
        f"The bytes do not match the declared SHA-256 (checked against {source}); the upload "
        "was discarded. Start a new one.",
        upload_id=str(revision.id),
    )
