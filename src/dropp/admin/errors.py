from dropp.core.errors import BadRequest, Conflict, DroppError, NotFound


class AdminRequired(DroppError):
    status, code = 403, "admin_required"


class UserNotFound(NotFound):
    code = "user_not_found"


class UnknownRole(DroppError):
    """The problem body lists the roles this server knows as `allowed_roles`."""

    status, code = 422, "unknown_role"


class LastAdmin(Conflict):
    code = "last_admin"


class InvalidCursor(BadRequest):
    code = "invalid_cursor"
