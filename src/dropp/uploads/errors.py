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
