"""The OpenAPI document's patterns accept exactly what the server accepts: names and paths
as names.py judges them (but for the UTF-8 byte limit, which only the description states),
under both settings of ALLOW_WINDOWS_INCOMPATIBLE_NAMES, and the titles and device names of
their validators. Python's `re` and the fuzzer's validator (Rust's regex) read each alike."""

import re
import subprocess
import sys
import unicodedata
from collections.abc import Callable
from functools import cache, partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from dropp.core.char_classes import changed_by_nfc
from dropp.core.strings import unstorable
from dropp.file_requests.schemas import Title
from dropp.files.name_policy import name_policy
from dropp.files.name_schema import existing_path_pattern, name_pattern, path_pattern
from dropp.files.names import (
    MAX_NAME_BYTES,
    existing_path_names,
    normalize_name,
    split_folder_path,
)
from dropp.main import create_app
from dropp.uploads.schemas import DeviceName
from tests.conftest import isolated_settings

# What the rules are about, so that generated names meet every rule often, beside
# arbitrary characters.
PIECES = [
    *("CON", "con", "Nul", "aux", "PRN", "CONIN$", "conout$", "COM1", "lpt9", "com¹", "LPT³"),
    *("COM10", "CONSOLE", "CONI\u0307N$", "con\u0131n$", "\u0130", "a", "Z", "report", "é"),
    *(".", "..", " ", "  ", "\u00a0", "\u2000", "\u3000", "\t", "\n", "\u2028", "\x1f"),
    *("/", "\\", ":", "*", "?", '"', "<", ">", "|", "<\u0338", ">\u0338", "\u0338", "\u0334"),
    *("\u200d", "\u200c", "\ufe0f", "\ufe0e", "\ufe00", "\U000e0100", "\U000e01ef"),
    *("\u00ad", "\u200b", "\u2060", "\ufeff", "\u180e", "\U000e0041", "\u202e", "\u2066"),
    *("\u061c", "\u0600", "\u06dd", "\U000110bd", "\u3164", "\u115f", "\u1160", "\u034f"),
    *("\u2764", "\U0001f468", "\U0001f469", "\U0001f3fb", "\u0301", "\u0323", "\u0307"),
    *("e\u0301", "\u00e9", "A\u030a", "\u212b", "\u212a", "\u0958", "\uac00", "\u1100\u1161"),
    *("\u0645\u06cc", "\u0915\u094d", "\x00", "\ud800", "\udfff", "\U0010ffff", "\ue000"),
]
piece = st.one_of(st.sampled_from(PIECES), st.characters())
names = st.lists(piece, max_size=6).map("".join)
paths = st.lists(st.one_of(names, st.just("")), max_size=4).flatmap(
    lambda parts: st.tuples(st.sampled_from(["", "/", "//"]), st.sampled_from(["", "/", "//"])).map(
        lambda ends: ends[0] + "/".join(parts) + ends[1]
    )
)
EXAMPLES = settings(max_examples=800, derandomize=True, deadline=None, database=None)


def accepted(judge: Callable[[str], object], text: str) -> bool:
    """Whether the server takes `text`: the edge refuses what PostgreSQL cannot store."""
    if unstorable(text):
        return False
    try:
        judge(text)
    except ValueError:  # PydanticCustomError, the named rules, is one too
        return False
    return True


def fits(*names: str) -> bool:
    nfc = (unicodedata.normalize("NFC", name).encode(errors="surrogatepass") for name in names)
    return all(len(name) <= MAX_NAME_BYTES for name in nfc)


@cache
def validator(pattern: str) -> Any:
    return jsonschema_rs.validator_for({"type": "string", "pattern": pattern})


def assert_pattern_says(pattern: str, text: str, expected: bool) -> None:
    assert bool(re.fullmatch(pattern, text)) is expected, ascii(text)
    if not unstorable(text):  # Rust strings hold no lone surrogates
        assert validator(pattern).is_valid(text) is expected, ascii(text)


# Whether the Windows-only rules apply (ALLOW_WINDOWS_INCOMPATIBLE_NAMES=false).
both_settings = pytest.mark.parametrize("windows", [True, False], ids=["windows", "lenient"])


@both_settings
@EXAMPLES
@given(name=names)
def test_the_name_pattern_accepts_what_normalize_name_does(windows: bool, name: str) -> None:
    assume(fits(name))
    expected = accepted(partial(normalize_name, windows=windows), name)
    assert_pattern_says(name_pattern(windows), name, expected)


@both_settings
@EXAMPLES
@given(path=paths)
def test_the_path_patterns_accept_what_split_folder_path_does(windows: bool, path: str) -> None:
    assume(fits(*path.split("/")))
    with name_policy(allow_windows_incompatible_names=not windows):
        expected = accepted(split_folder_path, path)
        top_level = expected and not split_folder_path(path)
    assert_pattern_says(path_pattern(windows, top_level=True), path, expected)
    # POST /folders and a file request's folder: the top level is refused.
    assert_pattern_says(path_pattern(windows, top_level=False), path, expected and not top_level)


@EXAMPLES
@given(path=paths)
def test_the_lookup_path_pattern_accepts_what_existing_path_names_does(path: str) -> None:
    assume(fits(*path.split("/")))
    expected = accepted(existing_path_names, path)
    assert_pattern_says(existing_path_pattern(), path, expected)


@cache
def representatives() -> list[str]:
    """The first and last character of every run of code points alike in what the rules and
    NFC look at, and every character NFC changes: one wrong range of a class shows here."""
    chars = "".join(map(chr, range(0x110000)))
    traits = [unicodedata.category, str.isspace, unicodedata.combining]
    traits.append(partial(unicodedata.is_normalized, "NFC"))
    edges = {
        code
        for trait in traits
        for code, (before, after) in enumerate(pairwise(map(trait, chars)), 1)
        if before != after
    }
    chosen = {*changed_by_nfc(), *(c for c in PIECES if len(c) == 1), chars[0], chars[-1]}
    chosen.update(chars[code] for edge in edges for code in (edge - 1, edge))
    return sorted(chosen - set(map(chr, range(0xD800, 0xE000))))


@both_settings
def test_every_kind_of_character_in_every_place(windows: bool) -> None:
    pattern = name_pattern(windows)
    contexts = ["{}", "a{}a", "{}\u200da", "a\u200d{}", "a{}\ufe0f", "CON{}", "<{}\u0338"]
    for char in representatives():
        for context in contexts:
            name = context.format(char)
            expected = accepted(partial(normalize_name, windows=windows), name)
            assert bool(re.fullmatch(pattern, name)) is expected, ascii(name)


titles = st.lists(st.one_of(st.sampled_from(PIECES), st.characters()), max_size=8).map("".join)
TITLE = TypeAdapter(Title)
DEVICE = TypeAdapter(DeviceName)


@cache
def documented_pattern(adapter: TypeAdapter[str]) -> str:
    [pattern] = find_patterns(adapter.json_schema())
    return pattern


@EXAMPLES
@given(title=titles)
def test_the_title_pattern_accepts_what_the_validator_does(title: str) -> None:
    expected = accepted(TITLE.validate_python, title)
    assert_pattern_says(documented_pattern(TITLE), title, expected)


@EXAMPLES
@given(device=titles)
def test_the_device_pattern_accepts_what_the_validator_does(device: str) -> None:
    assume(0 < len(device) <= 64)  # minLength and maxLength
    expected = accepted(DEVICE.validate_python, device)
    assert_pattern_says(documented_pattern(DEVICE), device, expected)


def find_patterns(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return own + [found for value in node.values() for found in find_patterns(value)]
    if isinstance(node, list):
        return [found for value in node for found in find_patterns(value)]
    return []


@pytest.mark.parametrize("allow", [False, True])
def test_the_document_states_the_rules_of_its_server(tmp_path: Path, allow: bool) -> None:
    """Each app's document has its own setting's pattern, however many apps a process builds
    and whatever policy the caller is under."""
    app = create_app(
        isolated_settings(
            tmp_path,
            database_url="postgresql+asyncpg://dropp@localhost/dropp",
            secret_key="k" * 64,
            allow_windows_incompatible_names=allow,
        )
    )
    with name_policy(allow_windows_incompatible_names=not allow):
        schemas = app.openapi()["components"]["schemas"]

    def field(model: str, name: str) -> dict[str, Any]:
        schema: dict[str, Any] = schemas[model]["properties"][name]
        return next(each for each in schema.get("anyOf", [schema]) if each.get("type") == "string")

    windows = not allow
    filename = field("UploadCreate", "filename")
    assert filename["pattern"] == name_pattern(windows)
    assert (filename["minLength"], filename["maxLength"]) == (1, MAX_NAME_BYTES)
    assert f"{MAX_NAME_BYTES} bytes of UTF-8" in filename["description"]
    assert field("FileMove", "name")["pattern"] == name_pattern(windows)
    assert field("DropCreate", "filename")["pattern"] == name_pattern(windows)
    assert field("UploadCreate", "folder")["pattern"] == path_pattern(windows, top_level=True)
    assert field("FolderCreate", "path")["pattern"] == path_pattern(windows, top_level=False)
    requested = field("FileRequestCreate", "folder_path")["pattern"]
    assert requested == path_pattern(windows, top_level=False)
    assert field("FolderMove", "parent_path")["pattern"] == existing_path_pattern()
    # The field's own description comes first.
    assert field("DropCreate", "filename")["description"].startswith("The name it is stored")


def test_importing_the_app_scans_no_code_point() -> None:
    """Building the classes takes a second: it waits for the first document."""
    check = (
        "import dropp.main, dropp.core.char_classes as classes;"
        "assert classes._category_codes.cache_info().currsize == 0;"
        "assert classes._every_char.cache_info().currsize == 0"
    )
    subprocess.run([sys.executable, "-c", check], check=True)
