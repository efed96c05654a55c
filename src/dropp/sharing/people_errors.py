"""Errors of shares with people (grants to an address or a role)."""

from dropp.core.errors import DroppError, NotFound


class GrantNotFound(NotFound):
    """No grant with this id that the caller owns (owner routes) or that applies to the
    caller (recipient routes): another user's grant is indistinguishable from none."""

    code = "grant_not_found"


class UnknownRole(DroppError):
    status, code = 422, "unknown_role"


class RoleShareAdminOnly(DroppError):
    """Sharing with a whole role reaches every account of it: an admin right unless
    ROLE_SHARES_BY=everyone."""

    status, code = 403, "role_share_admin_only"


class ShareWithSelf(DroppError):
    status, code = 422, "share_with_self"


class ShareReadOnly(DroppError):
    """The share gives the caller `viewer` access only: it cannot take uploads."""

    status, code = 403, "share_read_only"


class ShareTargetMismatch(DroppError):
    """An upload through a share of one file names another file or a folder."""

    status, code = 422, "share_target_mismatch"
