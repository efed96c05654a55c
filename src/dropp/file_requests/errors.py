from typing import ClassVar

from dropp.core.errors import Conflict, DroppError, NotFound, PayloadTooLarge
from dropp.core.pages import SECRET_LINK_HEADERS


class FileRequestNotFound(NotFound):
    """Unknown, closed, past its deadline, its folder gone, or another user's: one answer, so
    a link's holder learns nothing about which."""

    code = "file_request_not_found"
    headers: ClassVar[dict[str, str]] = SECRET_LINK_HEADERS


class FileRequestFull(DroppError):
    """Every upload the request allows has been started."""

    status, code = 410, "file_request_full"
    headers: ClassVar[dict[str, str]] = SECRET_LINK_HEADERS


class FileRequestNoSpace(PayloadTooLarge):
    """The owner's quota cannot take the file; unlike `quota_exceeded`, without the owner's
    figures, which are none of the uploader's business."""

    code = "file_request_no_space"
    headers: ClassVar[dict[str, str]] = SECRET_LINK_HEADERS


class NameBusy(Conflict):
    """Many files of the same name arriving in the folder at once took every name tried."""

    code = "name_busy"


class DeadlineInPast(DroppError):
    status, code = 422, "deadline_in_past"


class FileSizeLimitTooHigh(DroppError):
    """`max_file_bytes` above what the owner may upload in one file; the body has `max_bytes`."""

    status, code = 422, "max_file_bytes_too_high"
