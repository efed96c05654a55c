"""Where a client may receive an authorization code: an exact allowlist, plus RFC 8252's
loopback rule (the port of a loopback redirect is chosen by the app at run time)."""

import re
from collections.abc import Iterable
from typing import Any

# RFC 8252 §7.3: a loopback redirect names the IP literal and any port; "localhost" is not
# allowed, since a hostile resolver or hosts file may point it elsewhere.
# `\Z`, not `$`: `$` also matches before a final newline, which let a URI with one through.
_LOOPBACK = re.compile(
    r"^http://(?P<host>127\.0\.0\.1|\[::1\])(?::(?P<port>[0-9]{1,5}))?(?P<rest>/.*)\Z"
)

# The port `_without_port` takes: 1 to 5 digits, leading zeros included, from 1 to 65535.
_PORT = (
    "(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]"
    "|0[1-9][0-9]{0,3}|00[1-9][0-9]{0,2}|000[1-9][0-9]?|0000[1-9])"
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


def _literal(text: str) -> str:
    # Escaped the same for ECMA-262 (the document's regex dialect) and Python.
    return "".join(f"\\{c}" if c in "\\^$.|?*+()[]{}" else c for c in text)


def schema(allowlist: Iterable[str]) -> dict[str, Any]:
    """JSON Schema for exactly the URIs `is_allowed` takes from `allowlist`: each entry, and a
    loopback entry without a port on any port."""
    allowed = sorted(set(allowlist))
    choices: list[dict[str, Any]] = [{"enum": allowed}]
    for entry in allowed:
        match = _LOOPBACK.match(entry)
        if match is not None and match["port"] is None and "#" not in entry:
            host, rest = _literal(f"http://{match['host']}"), _literal(match["rest"])
            choices.append({"pattern": f"^{host}(?::{_PORT})?{rest}$"})
    return {"anyOf": choices}
