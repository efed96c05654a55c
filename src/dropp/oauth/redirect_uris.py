"""Where a client may receive an authorization code: an exact allowlist, plus RFC 8252's
loopback rule (the port of a loopback redirect is chosen by the app at run time)."""

import re
from collections.abc import Iterable

# RFC 8252 §7.3: a loopback redirect names the IP literal and any port; "localhost" is not
# allowed, since a hostile resolver or hosts file may point it elsewhere.
_LOOPBACK = re.compile(
    r"^http://(?P<host>127\.0\.0\.1|\[::1\])(?::(?P<port>[0-9]{1,5}))?(?P<rest>/.*)$"
)


def _without_port(uri: str) -> str | None:
    match = _LOOPBACK.match(uri)
    if match is None:
        return None
    port = match["port"]
    if port is not None and not 0 < int(port) < 65536:
        return None
    return f"http://{match['host']}{match['rest']}"


def is_allowed(uri: str, allowlist: Iterable[str]) -> bool:
    """True when `uri` is on the list, character for character; a loopback entry without a
    port matches the same URI on any port. No normalization: a trailing slash, another case
    or an added query is another URI, and is refused."""
    allowed = set(allowlist)
    if uri in allowed:
        return True
    loopback = _without_port(uri)
    return loopback is not None and loopback in allowed and "#" not in uri
