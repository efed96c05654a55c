"""What makes a file or folder name acceptable on every desktop Dropp syncs to, and the key
two names of one folder are compared by. docs/names.md explains every rule."""

import re
import unicodedata
from contextvars import ContextVar
from enum import StrEnum

from pydantic_core import PydanticCustomError

MAX_NAME_BYTES = 255

# Characters that reorder how a name is displayed, the trick behind "invoice‮fdp.exe".
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)

# Whether this request may create names only Windows refuses (ALLOW_WINDOWS_INCOMPATIBLE_NAMES).
# Set per request by `NamePolicyMiddleware`: the schemas that judge names are built without
# the settings, and a module-level flag would leak between apps built with different ones.
allow_windows_incompatible: ContextVar[bool] = ContextVar(
    "allow_windows_incompatible", default=False
)


class NameRule(StrEnum):
    """The stable `code` of the 422 answer refusing a name, one for each rule."""

    WINDOWS_RESERVED = "name_reserved_on_windows"
    WINDOWS_CHARACTER = "name_character_not_on_windows"
    WINDOWS_TRAILING = "name_trailing_dot_or_space"
    INVISIBLE = "name_invisible_character"


# Device names: Windows opens the device instead of the file, with or without an extension
# ("nul.txt" too) and whatever the case. The superscript digits are devices as well.
WINDOWS_DEVICE_NAMES = ("CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$")
WINDOWS_PORTS = ("COM", "LPT")
WINDOWS_PORT_NUMBERS = "0123456789¹²³"
WINDOWS_DEVICES = re.compile(
    "|".join(map(re.escape, WINDOWS_DEVICE_NAMES))
    + f"|({'|'.join(WINDOWS_PORTS)})[{WINDOWS_PORT_NUMBERS}]",
    re.IGNORECASE,
)
WINDOWS_FORBIDDEN = frozenset(':*?"<>|')

# Joiners shape scripts (Persian, Indic) and emoji sequences between two visible characters;
# anywhere else they are only an invisible difference between two names.
JOINERS = frozenset("\u200c\u200d")
# Format characters (category Cf) that are drawn: the Arabic number and end-of-ayah signs
# and their Syriac, Kaithi and Egyptian kin, which sit before the digits they mark.
VISIBLE_FORMAT = frozenset("\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f\u0890\u0891")
VISIBLE_FORMAT |= frozenset("\u08e2\U000110bd\U000110cd")
# Not format characters, yet drawn as nothing: the Hangul fillers and the combining grapheme
# joiner.
BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u034f")


VARIATION_SELECTORS = (("\ufe00", "\ufe0f"), ("\U000e0100", "\U000e01ef"))
# Control characters and line or paragraph separators: never part of a name.
CONTROL_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
# Categories never drawn, whose characters cannot carry a joiner or a variation selector.
UNDRAWN_CATEGORIES = CONTROL_CATEGORIES | {"Cf"}


def _is_variation_selector(char: str) -> bool:
    return any(first <= char <= last for first, last in VARIATION_SELECTORS)


def _refuse(rule: NameRule, message: str) -> PydanticCustomError:
    # The rule's code goes into the error's context, where the 422 renderer finds it.
    return PydanticCustomError(rule.value, message, {"problem_code": rule.value})


def _invisible(name: str) -> str | None:
    """Why an invisible character of the name is refused; None if it holds none."""
    for index, char in enumerate(name):
        before = name[index - 1] if index > 0 else ""
        after = name[index + 1] if index + 1 < len(name) else ""
        code = f"U+{ord(char):04X}"
        if char in JOINERS:
            if _drawn(before) and _drawn(after):
                continue
            return f"names may hold a joiner ({code}) only between two visible characters"
        if _is_variation_selector(char):
            # "❤️" is U+2764 with U+FE0F: a selector modifies the character before it, and
            # with nothing to modify it is an invisible difference.
            if _drawn(before):
                continue
            return (
                f"names may hold a variation selector ({code}) only after the character it modifies"
            )
        if char in BLANK_LETTERS or (
            unicodedata.category(char) == "Cf" and char not in VISIBLE_FORMAT
        ):
            label = unicodedata.name(char, "a format character").lower()
            return f"names may not contain invisible characters ({code}, {label})"
    return None


def _drawn(char: str) -> bool:
    if not char or char.isspace() or char in JOINERS or _is_variation_selector(char):
        return False
    return unicodedata.category(char) not in UNDRAWN_CATEGORIES


def _windows_problem(name: str) -> tuple[NameRule, str] | None:
    if name[-1] in ". ":
        end = "a dot" if name[-1] == "." else "a space"
        return NameRule.WINDOWS_TRAILING, f"names may not end with {end} (Windows cannot hold them)"
    forbidden = sorted(set(name) & WINDOWS_FORBIDDEN)
    if forbidden:
        return (
            NameRule.WINDOWS_CHARACTER,
            f"names may not contain {' '.join(forbidden)} (Windows cannot hold them; "
            'none of : * ? " < > | may appear)',
        )
    # Windows ignores what follows the first dot, and spaces before it: "con .txt" is CON.
    stem = name.split(".", 1)[0].rstrip(" ")
    if WINDOWS_DEVICES.fullmatch(stem):
        return (
            NameRule.WINDOWS_RESERVED,
            f"names may not be {stem.upper()}, with or without an extension: Windows reserves "
            "CON, PRN, AUX, NUL, COM0-COM9 and LPT0-LPT9 for devices",
        )
    return None


def normalize_existing_name(name: str) -> str:
    """The NFC form of a name under the rules every stored name already meets: for names
    that are looked up, or made from a stored one (a conflicted copy of an old "CON.txt")."""
    name = unicodedata.normalize("NFC", name)
    if not name.strip():
        raise ValueError("a name cannot be empty")
    if name in {".", ".."}:
        raise ValueError("'.' and '..' are not names")
    if "/" in name or "\\" in name:
        raise ValueError("a name cannot contain '/' or '\\'")
    for char in name:
        if unicodedata.category(char) in CONTROL_CATEGORIES:
            raise ValueError("a name cannot contain control characters or line breaks")
        if char in BIDI_CONTROLS:
            raise ValueError("a name cannot contain bidirectional control characters")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise ValueError(f"a name is at most {MAX_NAME_BYTES} bytes in UTF-8")
    return name


def normalize_name(name: str, *, windows: bool | None = None) -> str:
    """The NFC form of a valid new name; ValueError (or, naming the rule, a
    PydanticCustomError) saying why otherwise.

    `windows` says whether the Windows-only rules apply; None: as this request's policy says.
    """
    name = normalize_existing_name(name)
    invisible = _invisible(name)
    if invisible is not None:
        raise _refuse(
            NameRule.INVISIBLE,
            f"{invisible}: two names that look alike would be different names",
        )
    if windows is None:
        windows = not allow_windows_incompatible.get()
    problem = _windows_problem(name) if windows else None
    if problem is not None:
        raise _refuse(*problem)
    return name


def name_key(name: str) -> str:
    """What two names of one folder are compared by: `Report.PDF` and `report.pdf` are one
    name, as on Windows and macOS. NFC, then Unicode full case folding, then NFC again
    (folding can undo composition: "İ" folds to "i" and a combining dot)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def split_folder_path(path: str) -> list[str]:
    """`/a/b/` -> ["a", "b"] for a path whose missing folders may be created: every segment
    a valid new name. "" and "/" are the top level; "a//b" is refused."""
    trimmed = path.strip("/")
    return [normalize_name(part) for part in trimmed.split("/")] if trimmed else []


def existing_path_names(path: str) -> list[str]:
    """`split_folder_path` for a path that is only looked up: folders named before today's
    rules (a "CON" from an earlier version) can still be found."""
    trimmed = path.strip("/")
    return [normalize_existing_name(part) for part in trimmed.split("/")] if trimmed else []
