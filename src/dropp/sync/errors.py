from dropp.core.errors import BadRequest, DroppError


class InvalidSyncCursor(BadRequest):
    code = "invalid_cursor"


class CursorExpired(DroppError):
    """The changes after the cursor were pruned (CHANGE_RETENTION_DAYS): re-snapshot."""

    status, code = 410, "cursor_expired"


class TimeoutTooLong(BadRequest):
    code = "timeout_too_long"
