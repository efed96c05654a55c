"""Secrets in URLs kept out of the access log.

Share links (`/s/<token>`), file-request links (`/r/<token>`), email links (`?token=`) and the
sign-in redirects (`?code=`, `?state=`) carry their secret in the URL, and uvicorn's access
log prints every request's path and query. Whoever reads the log (an operator, a log
pipeline, a support ticket) would hold working links. The filter rewrites each secret to `…`
before the line is formatted, keeping the rest of the line for debugging.
"""

import logging
import re
from urllib.parse import unquote_plus

ACCESS_LOGGER = "uvicorn.access"
REDACTED = "…"
# The first segment after these prefixes is a bearer secret.
SECRET_PATH = re.compile(r"^(/(?:s|r)/)[^/?]+")
# Query parameters that carry a secret somewhere in Dropp or in the OAuth flows it serves.
SECRET_PARAMETERS = frozenset(
    {
        "token",
        "code",
        "state",
        "user_code",
        "device_code",
        "code_verifier",
        "access",
        "access_token",
        "refresh_token",
        "id_token",
        "client_secret",
        "password",
    }
)


def redact_target(target: str) -> str:
    """A request target (path and query) with its secrets replaced by `…`."""
    path, separator, query = target.partition("?")
    path = SECRET_PATH.sub(rf"\g<1>{REDACTED}", path)
    if not separator:
        return path
    parts = []
    for part in query.split("&"):
        name, equals, _ = part.partition("=")
        # Compared decoded, as the app reads it: `tok%65n=` is `token=` too.
        if equals and unquote_plus(name).lower() in SECRET_PARAMETERS:
            part = f"{name}={REDACTED}"
        parts.append(part)
    return f"{path}?{'&'.join(parts)}"


class RedactUrlSecrets(logging.Filter):
    """Rewrites the request target in uvicorn's access records (`args[2]`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_target(args[2]), *args[3:])
        return True


def install(logger_name: str = ACCESS_LOGGER) -> None:
    """Redact the logger's records from now on; installing twice adds nothing."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(existing, RedactUrlSecrets) for existing in logger.filters):
        logger.addFilter(RedactUrlSecrets())
