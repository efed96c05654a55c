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
    """An email link that is unknown, expired, already used, or for an address since changed."""

    code = "invalid_email_link"


class InvalidNewPassword(BadRequest):
    code = "invalid_password"


class EmailAlreadyVerified(Conflict):
    code = "email_already_verified"


class NoEmailAddress(Conflict):
    code = "no_email_address"


class EmailNotSent(ServiceUnavailable):
    code = "email_not_sent"
