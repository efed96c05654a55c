"""Names a local file system cannot hold, and names the server takes for one.

The server compares the names of one folder after NFC and case folding (`Report.pdf` and
`report.PDF` are one name there, docs/names.md), whatever file system the desktop has. A
Linux folder can hold both, which the server cannot; a server that allows Windows-incompatible
names can hold `CON` or `a:b`, which Windows cannot. Sync skips such names and says why: it
never renames them behind the person's back.

These rules are the client's own copy of what a desktop needs: the client imports nothing of
the server.
"""

import re
import unicodedata
from collections.abc import Iterable

from dropp.client.sync.model import RelPath

MAX_NAME_BYTES = 255
# Windows opens the device instead of the file, with or without an extension and in any
# case; the superscript digits are ports too.
WINDOWS_DEVICES = re.compile(r"CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|(COM|LPT)[0-9¹²³]", re.IGNORECASE)
WINDOWS_FORBIDDEN = frozenset('<>:"|?*\\')


def name_key(name: str) -> str:
    """What the server compares two names of one folder by: NFC, case folding, NFC again
    (folding can undo composition: "İ" folds to "i" and a combining dot)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def path_key(path: RelPath) -> str:
    return "/".join(name_key(part) for part in path.split("/")) if path else ""


def unstorable_name(name: str, *, windows: bool) -> str | None:
    """Why a local file system cannot hold this one name; None if it can."""
    if not name or name in {".", ".."}:
        return "not a name a file system can hold"
    if "/" in name or "\0" in name:
        return "a name cannot contain / or NUL"
    if not windows:
        if len(name.encode("utf-8")) > MAX_NAME_BYTES:
            return f"longer than {MAX_NAME_BYTES} bytes, the most a file system holds"
        return None
    # NTFS counts UTF-16 code units.
    if len(name.encode("utf-16-le")) // 2 > MAX_NAME_BYTES:
        return f"longer than {MAX_NAME_BYTES} characters, the most Windows holds"
    if name[-1] in ". ":
        return "Windows cannot hold a name ending with a dot or a space"
    forbidden = sorted(set(name) & WINDOWS_FORBIDDEN)
    if forbidden or any(ord(char) < 32 for char in name):
        shown = " ".join(forbidden) if forbidden else "control characters"
        return f"Windows cannot hold a name containing {shown}"
    # Windows ignores what follows the first dot, and spaces before it: "con .txt" is CON.
    stem = name.split(".", 1)[0].rstrip(" ")
    if WINDOWS_DEVICES.fullmatch(stem):
        return f"Windows reserves {stem.upper()} for a device, with or without an extension"
    return None


def unstorable(path: RelPath, *, windows: bool) -> str | None:
    """Why the local file system cannot hold `path` (the first name of it that it cannot);
    None if it can. The root ("") is always fine."""
    if not path:
        return None
    for name in path.split("/"):
        reason = unstorable_name(name, windows=windows)
        if reason is not None:
            return f"{name!r}: {reason}"
    return None


def case_clashes(paths: Iterable[RelPath]) -> set[RelPath]:
    """The paths that are another one of `paths` after NFC and case folding, other than the
    first of each such group in sorted order: those the server (or a case-insensitive file
    system) cannot hold beside it."""
    seen: set[str] = set()
    clashes: set[RelPath] = set()
    for path in sorted(set(paths)):
        key = path_key(path)
        if key in seen:
            clashes.add(path)
        else:
            seen.add(key)
    return clashes
