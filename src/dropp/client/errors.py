"""What can go wrong between the client and a server, each with what the person can do."""

from typing import Any


class ClientError(Exception):
    """A failure the client explains in one line; `exit_code` is the command's exit status."""

    exit_code = 1


class NotSignedIn(ClientError):
    """No session for this server, or the server ended it (revoked, expired, disabled)."""

    exit_code = 3

    def __init__(self, server: str, why: str = "You are not signed in") -> None:
        super().__init__(f"{why} to {server}: run `dropp login`.")
        self.server = server


class ServerUnavailable(ClientError):
    """The server cannot be reached, or answers 503, after the retries the client allows."""

    exit_code = 7


class ApiError(ClientError):
    """The server refused a request with its problem body (RFC 9457) and a stable `code`."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.code: str = str(problem.get("code") or problem.get("error") or f"http_{status}")
        detail = problem.get("detail") or problem.get("error_description") or problem.get("title")
        super().__init__(str(detail or f"The server answered {status}."))

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        if self.status in (401, 403) and self.code in ("not_authenticated", "invalid_token"):
            return NotSignedIn.exit_code
        if self.status == 404:
            return 4
        if self.status == 409:
            return 5
        return 1


class NotFound(ClientError):
    """A path or id the person named does not exist on the server (or locally)."""

    exit_code = 4
