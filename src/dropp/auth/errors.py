from dropp.core.errors import BadRequest, Conflict, NotAuthenticated, ServiceUnavailable


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"


class InvalidToken(NotAuthenticated):
    code = "invalid_token"


class InvalidRefreshToken(NotAuthenticated):
    code = "invalid_refresh_token"


class RefreshTokenReused(InvalidRefreshToken):
    # The revocation of the whole family must outlive the error response.
    persists_changes = True


class InvalidEmailLink(BadRequest):
    """An email link that cannot be used; answered with the link's page, never as a problem.

    As such, a link whose token is missing or damaged (cut short by a mail client, say)."""

    code = "invalid_email_link"


class EmailLinkNotFound(InvalidEmailLink):
    """No link was ever sent with this token, for this purpose: like an unknown share link."""

    status, code = 404, "email_link_not_found"


class EmailLinkGone(InvalidEmailLink):
    """A link that was sent and can no longer be used: expired, already used, or sent to an
    address the account no longer has (or an account since deactivated)."""

    status, code = 410, "email_link_gone"


class InvalidNewPassword(BadRequest):
    code = "invalid_password"


class EmailAlreadyVerified(Conflict):
    code = "email_already_verified"


class NoEmailAddress(Conflict):
    code = "no_email_address"


class EmailNotSent(ServiceUnavailable):
    code = "email_not_sent"
