from dropp.core.errors import BadRequest, Conflict, DroppError, NotFound


class ShareNotFound(NotFound):
    """An unknown, revoked or expired link, or one whose item is gone: all look the same."""

    code = "share_not_found"


class ShareLocked(DroppError):
    status, code = 401, "share_locked"


class WrongPassword(DroppError):
    status, code = 401, "wrong_password"


class ShareNotLocked(Conflict):
    code = "share_not_locked"


class DownloadLimitReached(DroppError):
    status, code = 410, "download_limit_reached"


class InvalidSharePath(BadRequest):
    code = "invalid_share_path"
