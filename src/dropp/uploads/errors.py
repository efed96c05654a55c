from dropp.core.errors import (
    Conflict,
    DroppError,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
)


class FileTooLarge(PayloadTooLarge):
    """Over `max_bytes`: the server's limit, or the role's where that is lower."""

    code = "file_too_large"


class EmailNotVerified(DroppError):
    status, code = 403, "email_not_verified"


class UploadNotFound(NotFound):
    code = "upload_not_found"


class UploadAmbiguous(Conflict):
    code = "upload_ambiguous"


class UploadIncomplete(Conflict):
    """Storage holds no object yet: the client may upload and complete again."""

    code = "upload_incomplete"


class UploadSizeMismatch(Conflict):
    code = "upload_size_mismatch"
    # The revision is recorded as failed even though the request answers with an error.
    persists_changes = True


class UploadExpired(Conflict):
    code = "upload_expired"
    persists_changes = True


class StorageVersioningDisabled(ServiceUnavailable):
    code = "storage_versioning_disabled"


class UploadFailed(Conflict):
    """A multipart upload that failed its checks earlier, asked about again."""

    code = "upload_failed"


class UploadAlreadyComplete(Conflict):
    code = "upload_complete"


class UploadNotMultipart(Conflict):
    code = "upload_not_multipart"


class UploadPartsMismatch(Conflict):
    """The client's list of parts is not what storage holds; nothing changes."""

    code = "upload_parts_mismatch"


class UploadPartSizeMismatch(Conflict):
    code = "upload_part_size_mismatch"
    persists_changes = True


class UploadChecksumMismatch(Conflict):
    code = "upload_checksum_mismatch"
    persists_changes = True


class PartChecksumConflict(Conflict):
    """A part's SHA-256 is recorded; its URLs are only ever signed for that hash."""

    code = "part_checksum_conflict"


class PartNumberOutOfRange(DroppError):
    status, code = 422, "part_number_out_of_range"


class PartChecksumRequired(DroppError):
    status, code = 422, "part_checksum_required"
