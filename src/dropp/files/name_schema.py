"""The rules of names.py as JSON Schema, so the OpenAPI document says which names and paths
are accepted instead of only "string". docs/names.md explains the rules.

Everything is built from names.py's own constants. A pattern sees what the client sends,
while names.py judges its NFC form, so the pattern also takes the spellings NFC turns into
what the rules accept ("<" + U+0338 is stored as "≮", "I" + U+0307 as "İ"). The UTF-8 byte
limit is the one rule a pattern cannot count: the description states it.

The patterns are built when a document is generated, not at import: the classes come from
scanning every code point.
"""

import re
import unicodedata
from collections.abc import Callable
from functools import cache

from pydantic.config import JsonDict

from dropp.core.char_classes import (
    CharSet,
    blank,
    changed_by_nfc,
    combining_classes,
    compositions,
    escape,
)
from dropp.files.names import (
    BIDI_CONTROLS,
    BLANK_LETTERS,
    CONTROL_CATEGORIES,
    JOINERS,
    MAX_NAME_BYTES,
    UNDRAWN_CATEGORIES,
    VARIATION_SELECTORS,
    VISIBLE_FORMAT,
    WINDOWS_DEVICE_NAMES,
    WINDOWS_DEVICES,
    WINDOWS_FORBIDDEN,
    WINDOWS_PORT_NUMBERS,
    WINDOWS_PORTS,
    allow_windows_incompatible,
)

SLASHES = "/\\"
NAME_END = "$"
# In a path a segment also ends at the slash after it.
SEGMENT_END = "(?:/|$)"

BYTES_RULE = f"At most {MAX_NAME_BYTES} bytes of UTF-8 in NFC, which the pattern cannot count."
_RULES = (
    "not empty, blank, `.` or `..`; no `/`, `\\`, control, bidirectional or invisible "
    "characters; a joiner (U+200C, U+200D) only between two visible characters, a variation "
    "selector only after one."
)
_WINDOWS_RULES = (
    ' On this server also none of `:*?"<>|`, no trailing dot or space, and no Windows '
    "device name (CON, PRN, AUX, NUL, CONIN$, CONOUT$, COM0-9, LPT0-9, in any case, with "
    "or without an extension)."
)
_SEE = " See docs/names.md."


@cache
def _variation_selectors() -> CharSet:
    selectors = CharSet.of("")
    for first, last in VARIATION_SELECTORS:
        selectors |= CharSet.span(first, last)
    return selectors


@cache
def _drawn() -> CharSet:
    """What a joiner may stand between and a variation selector after (names._drawn).
    Without the slashes: in a path they end the segment, as the end of a name does."""
    undrawn = CharSet.categories(*UNDRAWN_CATEGORIES) | blank() | CharSet.of(JOINERS)
    return CharSet.everything() - undrawn - _variation_selectors() - CharSet.of(SLASHES)


def _never_in_names() -> CharSet:
    controls = CharSet.categories(*CONTROL_CATEGORIES)
    return controls | CharSet.of(BIDI_CONTROLS) | CharSet.of(SLASHES)


@cache
def _plain(windows: bool) -> CharSet:
    """What a new name may hold anywhere, whatever stands beside it."""
    shown = (CharSet.everything() - CharSet.categories("Cf")) | CharSet.of(VISIBLE_FORMAT)
    ruled = CharSet.of(JOINERS) | _variation_selectors() | CharSet.of(BLANK_LETTERS)
    plain = shown - ruled - _never_in_names()
    return plain - CharSet.of(WINDOWS_FORBIDDEN) if windows else plain


@cache
def _existing() -> CharSet:
    """What a stored name may hold (names.normalize_existing_name)."""
    return CharSet.everything() - _never_in_names()


def _not_blocking(mark: str) -> str:
    """What may stand between a character and `mark` without keeping NFC from joining
    them: canonical reordering moves marks of a higher combining class behind `mark`, and
    a lower one does not block it; one of its own class, or a starter, does. A character is
    judged by what it decomposes into (U+0F73 is two marks, though of class 0 itself)."""
    own = combining_classes().get(mark, 0)
    if not own:
        return "(?!)"
    candidates = {*combining_classes(), *changed_by_nfc()}
    return CharSet.of(
        char
        for char in candidates
        if all(combining_classes().get(part, 0) not in (0, own) for part in _nfd(char))
    ).regex()


def _nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def _composed_away(chars: frozenset[str]) -> list[str]:
    """Those of `chars` that NFC joins with a mark after them into another character, by
    mark: "<" + U+0338 is stored as "≮"."""
    bases: dict[str, set[str]] = {}
    for pair in compositions():
        if pair[0] in chars:
            bases.setdefault(pair[1], set()).add(pair[0])
    return [
        f"{CharSet.of(joined).regex()}(?={_not_blocking(mark)}*{escape(mark)})"
        for mark, joined in sorted(bases.items())
    ]


def _spellings(char: str) -> set[str]:
    """Every spelling of one character of a device name that WINDOWS_DEVICES, judging the
    NFC form, takes for it: its other cases, and what NFC makes them from."""
    same = re.compile(re.escape(char), WINDOWS_DEVICES.flags)
    cased = {other for other in _device_cases() if same.fullmatch(other)}
    spellings = cased | set(map(_nfd, cased))
    return spellings | {raw for raw, formed in changed_by_nfc().items() if formed in cased}


def _either(spellings: set[str]) -> str:
    single = CharSet.of(spelling for spelling in spellings if len(spelling) == 1).regex()
    longer = ["".join(map(escape, spelling)) for spelling in sorted(spellings) if len(spelling) > 1]
    return f"(?:{'|'.join([single, *longer])})" if longer else single


def _spelt(word: str) -> str:
    return "".join(_either(_spellings(char)) for char in word)


@cache
def _device_cases() -> frozenset[str]:
    letters = set("".join(WINDOWS_DEVICE_NAMES) + "".join(WINDOWS_PORTS) + WINDOWS_PORT_NUMBERS)
    anyone = re.compile(f"[{re.escape(''.join(sorted(letters)))}]", WINDOWS_DEVICES.flags)
    return frozenset(anyone.findall(CharSet.everything().text()))


@cache
def _device() -> str:
    """A Windows device name, the cases as character classes (`[Cc][Oo][Nn]`) rather than
    an inline flag, so ECMA-262 reads it too."""
    devices = "|".join(map(_spelt, WINDOWS_DEVICE_NAMES))
    ports = "|".join(map(_spelt, WINDOWS_PORTS))
    numbers = _either(set().union(*map(_spellings, WINDOWS_PORT_NUMBERS)))
    return f"(?:{devices}|(?:{ports}){numbers})"


@cache
def _segment(windows: bool, end: str) -> str:
    """One name, followed by `end` (not consumed)."""
    drawn = _drawn().regex()
    joiners, selectors = CharSet.of(JOINERS).regex(), _variation_selectors().regex()
    atoms = [_plain(windows).regex(), f"(?<={drawn})(?:{joiners}(?={drawn})|{selectors})"]
    checks = f"(?!\\.\\.?{end})(?!{blank().regex()}*{end})"
    tail = ""
    if windows:
        atoms += _composed_away(WINDOWS_FORBIDDEN)
        # Windows ignores what follows the first dot, and spaces before it: "con .txt" is CON.
        checks += f"(?!{_device()}\\u0020*(?:\\.|{end}))"
        tail = "(?<![\\u002E\\u0020])"
    return f"{checks}(?:{'|'.join(atoms)})+{tail}"


@cache
def name_pattern(windows: bool) -> str:
    """What names.normalize_name accepts, but for its byte limit; `windows`: with the
    Windows-only rules."""
    return f"^{_segment(windows, NAME_END)}$"


# Refuses an empty name between two others ("a//b"); slashes before and after are ignored.
# The segment is written once, followed by as many slashes as come: a pattern states each
# name's rules in full, and twice would double the document.
_NO_EMPTY_NAME = "(?![\\s\\S]*[^/]//+[^/])"


def _path(segment: str, *, top_level: bool) -> str:
    return f"^{_NO_EMPTY_NAME}/*(?:{segment}(?={SEGMENT_END})/*){'*' if top_level else '+'}$"


@cache
def path_pattern(windows: bool, *, top_level: bool) -> str:
    """What names.split_folder_path accepts: names joined by `/`, with slashes before and
    after; `top_level`: also "" and "/"."""
    return _path(_segment(windows, SEGMENT_END), top_level=top_level)


@cache
def existing_path_pattern() -> str:
    """What names.existing_path_names accepts: a path to look up, "" and "/" the top."""
    name = f"(?!\\.\\.?{SEGMENT_END})(?!{blank().regex()}*{SEGMENT_END}){_existing().regex()}+"
    return _path(name, top_level=True)


def _describe(schema: JsonDict, text: str) -> None:
    # After the field's own description, which says what the field is for.
    own = schema.get("description")
    schema["description"] = f"{own} {text}" if isinstance(own, str) else text


def _windows() -> bool:
    # Read when the document is generated, under the app's policy (core/openapi.py).
    return not allow_windows_incompatible.get()


def name_schema(schema: JsonDict) -> None:
    """`json_schema_extra` of a new file or folder name."""
    windows = _windows()
    rules = _RULES + (_WINDOWS_RULES if windows else "")
    _describe(schema, f"A name: {rules} {BYTES_RULE}{_SEE}")
    schema.update(minLength=1, maxLength=MAX_NAME_BYTES, pattern=name_pattern(windows))


def path_schema(*, top_level: bool) -> Callable[[JsonDict], None]:
    """`json_schema_extra` of a path whose missing folders are created; `top_level`: ""
    and "/" name the top level."""

    def extra(schema: JsonDict) -> None:
        windows = _windows()
        top = ' "" and "/" are the top level.' if top_level else " Not the top level."
        _describe(
            schema,
            "Folder names joined by `/`; slashes before and after are ignored, an empty name "
            f"(`a//b`) is refused.{top} Each name: {_RULES}"
            + (_WINDOWS_RULES if windows else "")
            + f" {BYTES_RULE}{_SEE}",
        )
        if not top_level:
            schema["minLength"] = 1
        schema["pattern"] = path_pattern(windows, top_level=top_level)

    return extra


def existing_path_schema(schema: JsonDict) -> None:
    """`json_schema_extra` of a path that is only looked up: "" and "/" the top level."""
    _describe(
        schema,
        "Folder names joined by `/`; slashes before and after are ignored, an empty name "
        '(`a//b`) is refused, "" and "/" are the top level. Each name: not empty, blank, `.` '
        f"or `..`; no `/`, `\\`, control or bidirectional characters. {BYTES_RULE}",
    )
    schema["pattern"] = existing_path_pattern()
