"""What sync leaves alone: the built-in temporary and system files, and `.droppignore`.

`.droppignore` at the sync root takes gitignore syntax. Its lines come after the built-ins,
so a `!` line can bring one of them back (`!*.tmp`). `.droppignore` itself always syncs, so
every device ignores the same things.
"""

from dataclasses import dataclass
from pathlib import Path

import pathspec

from dropp.client.sync.model import RelPath

IGNORE_FILE = ".droppignore"

# Files that only mean something on the machine that made them, or that exist only while a
# program writes (a copy of them elsewhere would be stale or torn). docs/client.md lists them.
BUILT_IN: tuple[str, ...] = (
    # macOS
    ".DS_Store",
    "._*",
    ".Spotlight-V100/",
    ".Trashes/",
    ".fseventsd/",
    ".TemporaryItems/",
    ".DocumentRevisions-V100/",
    # Windows
    "Thumbs.db",
    "ehthumbs.db",
    "desktop.ini",
    "$RECYCLE.BIN/",
    "System Volume Information/",
    # Linux
    ".Trash-*/",
    ".nfs*",
    ".fuse_hidden*",
    # Editors and office suites: swap, lock and backup files
    "*.swp",
    "*.swo",
    ".#*",
    "*~",
    "~$*",
    ".~lock.*#",
    "*.tmp",
    # Browsers' unfinished downloads
    "*.crdownload",
    "*.part",
    "*.partial",
    # Dropp's own downloads in progress and temporary names
    "*.dropp-part",
    ".dropp-*",
)
# Names gitignore syntax cannot state: its lines lose trailing whitespace, and macOS keeps a
# folder's custom icon in `Icon\r`.
BUILT_IN_NAMES = frozenset({"Icon\r"})


@dataclass(frozen=True)
class IgnoreRules:
    spec: pathspec.GitIgnoreSpec
    # The lines read from `.droppignore`, for `dropp status` to show.
    user_lines: tuple[str, ...] = ()

    @classmethod
    def load(cls, root: Path) -> "IgnoreRules":
        """The built-ins, then `<root>/.droppignore` if there is one."""
        try:
            # utf-8-sig: Windows editors may start the file with a byte-order mark.
            text = (root / IGNORE_FILE).read_text("utf-8-sig", errors="replace")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            text = ""
        return cls.of(text.splitlines())

    @classmethod
    def of(cls, lines: list[str] | tuple[str, ...] = ()) -> "IgnoreRules":
        return cls(pathspec.GitIgnoreSpec.from_lines([*BUILT_IN, *lines]), tuple(lines))

    def ignored(self, path: RelPath, is_dir: bool) -> bool:
        """Whether sync leaves `path` (relative to the root, `/`-separated) alone; a folder
        ignored hides everything in it."""
        if path == IGNORE_FILE:
            return False
        if path.rpartition("/")[2] in BUILT_IN_NAMES:
            return True
        return self.spec.match_file(f"{path}/" if is_dir else path)
