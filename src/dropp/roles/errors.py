from dropp.core.errors import DroppError


class UploadNotAllowed(DroppError):
    status, code = 403, "upload_not_allowed"


class FileTypeNotAllowed(DroppError):
    """The problem body lists what the role may upload: `allowed_extensions` and
    `allowed_content_types` (an empty list allows any)."""

    status, code = 415, "file_type_not_allowed"
