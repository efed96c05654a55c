"""Sets of Unicode characters, written as regex character classes for JSON Schema patterns.

A pattern in the OpenAPI document is read by Python's `re` (Hypothesis, Python clients),
by ECMA-262 engines with the `u` flag (browsers, most validators) and by Rust's regex (the
fuzzer's validator). `\\p{...}` classes mean different things to each, or nothing, so the
classes are spelt out as ranges computed from this Python's Unicode database, the one the
validators in Python judge by. Building a set scans every code point: callers cache what
they build, and build it only when a document is generated.
"""

import unicodedata
from collections.abc import Callable, Iterable, Iterator
from functools import cache, partial
from itertools import filterfalse
from typing import Self

_SIZE = 0x110000
_SURROGATES = slice(0xD800, 0xE000)
_CATEGORIES = (
    *("Cc", "Cf", "Cn", "Co", "Cs", "Ll", "Lm", "Lo", "Lt", "Lu", "Mc", "Me", "Mn", "Nd"),
    *("Nl", "No", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "Sc", "Sk", "Sm", "So", "Zl"),
    *("Zp", "Zs"),
)


@cache
def _every_char() -> str:
    return "".join(map(chr, range(_SIZE)))


@cache
def _category_codes() -> bytes:
    """Each code point's general category, as its index in _CATEGORIES."""
    index = {name: code for code, name in enumerate(_CATEGORIES)}
    return bytes(map(index.__getitem__, map(unicodedata.category, _every_char())))


@cache
def changed_by_nfc() -> dict[str, str]:
    """Every character that NFC replaces, with what it becomes (U+212A KELVIN SIGN: "K")."""
    changed = filterfalse(partial(unicodedata.is_normalized, "NFC"), _every_char())
    return {char: unicodedata.normalize("NFC", char) for char in changed}


@cache
def compositions() -> dict[str, str]:
    """Every pair of characters NFC joins into one: {"<" + U+0338: "≮", ...}."""
    pairs = {}
    for composite in filterfalse(partial(unicodedata.is_normalized, "NFD"), _every_char()):
        parts = unicodedata.decomposition(composite).split()
        if len(parts) != 2 or parts[0].startswith("<"):
            continue  # a compatibility mapping, a singleton, or a Hangul syllable
        pair = "".join(chr(int(part, 16)) for part in parts)
        if unicodedata.normalize("NFC", pair) == composite:
            pairs[pair] = composite
    return pairs


@cache
def combining_classes() -> dict[str, int]:
    """The canonical combining class of every character that has one (the non-starters)."""
    return {
        char: unicodedata.combining(char) for char in filter(unicodedata.combining, _every_char())
    }


class CharSet:
    """A set of Unicode scalar values: one byte, 0 or 1, for every code point. Surrogates
    are never members: they are not characters, and Rust's regex refuses a class naming
    them."""

    __slots__ = ("_mask",)

    def __init__(self, mask: bytes) -> None:
        self._mask = mask[: _SURROGATES.start] + bytes(0x800) + mask[_SURROGATES.stop :]

    @classmethod
    def everything(cls) -> Self:
        return cls(b"\x01" * _SIZE)

    @classmethod
    def of(cls, chars: Iterable[str]) -> Self:
        mask = bytearray(_SIZE)
        for char in chars:
            mask[ord(char)] = 1
        return cls(bytes(mask))

    @classmethod
    def span(cls, first: str, last: str) -> Self:
        return cls.of(map(chr, range(ord(first), ord(last) + 1)))

    @classmethod
    def categories(cls, *names: str) -> Self:
        """The characters of these general categories ("Cf", "Zs", ...)."""
        table = bytes(name in names for name in _CATEGORIES).ljust(256, b"\x00")
        return cls(_category_codes().translate(table))

    @classmethod
    def where(cls, predicate: Callable[[str], bool]) -> Self:
        """The characters the predicate holds for; fast for a builtin such as str.isspace."""
        return cls(bytes(map(bool, map(predicate, _every_char()))))

    def _bits(self) -> int:
        return int.from_bytes(self._mask, "big")

    def _from_bits(self, bits: int) -> Self:
        return type(self)(bits.to_bytes(_SIZE, "big"))

    def __or__(self, other: Self) -> Self:
        return self._from_bits(self._bits() | other._bits())

    def __and__(self, other: Self) -> Self:
        return self._from_bits(self._bits() & other._bits())

    def __sub__(self, other: Self) -> Self:
        return self._from_bits(self._bits() & ~other._bits())

    def __contains__(self, char: str) -> bool:
        return len(char) == 1 and self._mask[ord(char)] == 1

    def _runs(self) -> Iterator[tuple[int, int]]:
        return _runs(self._mask)

    def __iter__(self) -> Iterator[str]:
        return iter(self.text())

    def text(self) -> str:
        """Every member, in order, as one string (to search with a compiled regex)."""
        return "".join("".join(map(chr, range(first, last + 1))) for first, last in self._runs())

    def regex(self) -> str:
        """The set as a pattern matching one character.

        Hypothesis, which draws what a pattern matches, walks every code point a class
        lists, so a large set is written by what it leaves out: a negated class for the
        BMP, and a negative lookahead (never walked) for the rest. A negated class cannot
        name the surrogates (Rust's regex refuses them) yet must leave them out (Python
        reads it as matching them): it leaves out a range around them from the characters
        next to them, which are then added back if members."""
        members = self._mask.count(1)
        outside = self._mask.translate(_INVERT)
        if members <= outside.count(1, 0, _BMP) + _SURROGATES_AROUND:
            return _class(self._runs())
        around = bytearray(outside[:_BMP])
        around[_SURROGATES] = b"\x01" * 0x800
        readded = [edge for edge in (0xD7FF, 0xE000) if not around[edge]]
        for edge in readded:
            around[edge] = 1
        pattern = f"[^{''.join(_ranges(_runs(bytes(around))))}]"
        if outside.count(1, _BMP):
            astral = _runs(bytes(_BMP) + outside[_BMP:])
            pattern = f"(?!{_class(astral)}){pattern}"
        if readded:
            pattern = f"{pattern}|{_class((edge, edge) for edge in readded)}"
        return f"(?:{pattern})"


_BMP = 0x10000
_INVERT = bytes([1, 0]).ljust(256, b"\x00")
# What leaving out the surrogates costs a negated class: a range of them and two neighbours.
_SURROGATES_AROUND = 0x802


def _runs(mask: bytes) -> Iterator[tuple[int, int]]:
    """(first, last) of every run of members of a mask."""
    start = 0
    while (first := mask.find(1, start)) != -1:
        start = mask.find(0, first)
        start = len(mask) if start == -1 else start
        yield first, start - 1


def _ranges(runs: Iterable[tuple[int, int]]) -> Iterator[str]:
    for first, last in runs:
        if first == last:
            yield escape(chr(first))
        else:
            joint = "" if last == first + 1 else "-"
            yield f"{escape(chr(first))}{joint}{escape(chr(last))}"


def _class(runs: Iterable[tuple[int, int]]) -> str:
    parts = "".join(_ranges(runs))
    # An empty class: Python refuses `[]`, and an empty lookahead never matches anywhere.
    return f"[{parts}]" if parts else "(?!)"


def escape(char: str) -> str:
    """One character as every engine reads it, inside or outside a class."""
    if char.isascii() and char.isalnum():
        return char
    if ord(char) <= 0xFFFF:
        return f"\\u{ord(char):04X}"
    return char


@cache
def printable() -> CharSet:
    """What str.isprintable() holds for: no control, format, separator (but the space),
    private-use or unassigned character."""
    return CharSet.where(str.isprintable)


@cache
def blank() -> CharSet:
    """What str.strip() removes."""
    return CharSet.where(str.isspace)
