from dropp.core.errors import Conflict, NotAuthenticated


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"


class InvalidToken(NotAuthenticated):
    code = "invalid_token"


class InvalidRefreshToken(NotAuthenticated):
    code = "invalid_refresh_token"


class RefreshTokenReused(InvalidRefreshToken):
    # The revocation of the whole family must outlive the error response.
    persists_changes = True


class EmailTaken(Conflict):
    code = "email_taken"
