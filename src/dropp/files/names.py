"""What makes a file or folder name acceptable on every desktop Dropp syncs to."""

import unicodedata

MAX_NAME_BYTES = 255

# Characters that reorder how a name is displayed, the trick behind "invoice‮fdp.exe".
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def normalize_name(name: str) -> str:
    """The NFC form of a valid name; ValueError saying why otherwise."""
    name = unicodedata.normalize("NFC", name)
    if not name.strip():
        raise ValueError("a name cannot be empty")
    if name in {".", ".."}:
        raise ValueError("'.' and '..' are not names")
    if "/" in name or "\\" in name:
        raise ValueError("a name cannot contain '/' or '\\'")
    for char in name:
        if unicodedata.category(char) in {"Cc", "Zl", "Zp"}:
            raise ValueError("a name cannot contain control characters or line breaks")
        if char in BIDI_CONTROLS:
            raise ValueError("a name cannot contain bidirectional control characters")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise ValueError(f"a name is at most {MAX_NAME_BYTES} bytes in UTF-8")
    return name


def split_folder_path(path: str) -> list[str]:
    """`/a/b/` -> ["a", "b"]; "" and "/" are the top level; "a//b" is refused."""
    trimmed = path.strip("/")
    return [normalize_name(part) for part in trimmed.split("/")] if trimmed else []
