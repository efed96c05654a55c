"""The local tree as sync sees it: every folder and file under the root, with content hashes.

A file is hashed only when the hash cache has nothing for its (device, inode, size, mtime):
a pass over an unchanged tree reads no file, only directory entries. The whole cache is read
once per scan and the new hashes written in one transaction, so a pass over 10,000 files
costs a few queries, not 10,000.

A file whose mtime is within `RACY_SECONDS` of the moment it was hashed is not cached: a
write landing in the same clock tick as the hash (timestamps on many file systems are
coarser than their nanoseconds suggest) would leave the same mtime on other bytes, and the
cache would hide that edit forever. Such a file is hashed again by a later scan.
"""

import functools
import os
import stat
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from dropp.client.errors import ClientError
from dropp.client.hashing import Content, FileChanged, hash_file
from dropp.client.sync.ignore import IgnoreRules
from dropp.client.sync.journal import CachedHash, Inode, Journal
from dropp.client.sync.model import Kind, LocalItem, RelPath

RACY_SECONDS = 2
RACY_NS = RACY_SECONDS * 1_000_000_000


class ScanError(ClientError):
    """The sync root itself cannot be read: missing, not a folder, or unreadable."""


@dataclass
class Scan:
    items: dict[RelPath, LocalItem] = field(default_factory=dict)
    # Files that changed while they were hashed: left for the next pass.
    changing: list[RelPath] = field(default_factory=list)
    # What was skipped and why (symbolic links, unreadable files, unusable names).
    errors: list[tuple[RelPath, str]] = field(default_factory=list)
    # Files hashed by this scan; 0 when nothing changed.
    hashed: int = 0
    # Items whose name on disk is not their (NFC) path, such as a decomposed `é` written by
    # another program on Linux: what to open or rename on disk.
    disk_paths: dict[RelPath, RelPath] = field(default_factory=dict)

    def disk_path(self, root: Path, path: RelPath) -> Path:
        """Where `path` is on disk, as the file system spells it."""
        return root / self.disk_paths.get(path, path)

    @functools.cached_property
    def _doubtful(self) -> frozenset[RelPath]:
        return frozenset(self.changing).union(where for where, _ in self.errors)

    def uncertain(self, path: RelPath) -> bool:
        """Whether this scan could not tell what is at `path`: it, or a folder above it, is
        being written, was skipped or could not be read. Absent from `items`, such a path
        is not deleted."""
        while path:
            if path in self._doubtful:
                return True
            path = path.rpartition("/")[0]
        return False


def _stat(entry: os.DirEntry[str]) -> os.stat_result:
    result = entry.stat(follow_symlinks=False)
    # On Windows a directory entry's stat carries no inode; a real stat does.
    if result.st_ino == 0:
        result = os.lstat(entry.path)
    return result


def _inode(result: os.stat_result) -> Inode:
    return (result.st_dev, result.st_ino)


def scan(root: Path, journal: Journal, rules: IgnoreRules) -> Scan:
    """Walk `root` without following symbolic links; hash what the cache does not know."""
    try:
        if not stat.S_ISDIR(os.stat(root).st_mode):
            raise ScanError(f"The sync folder {root} is not a folder.")
    except OSError as error:
        raise ScanError(f"The sync folder {root} cannot be read: {error.strerror}.") from error
    result = Scan()
    cache = journal.hash_cache()
    new: dict[Inode, CachedHash] = {}
    seen: set[Inode] = set()
    claimed: set[RelPath] = set()
    # (path on disk, NFC path), both relative to the root; "" is the root.
    pending: list[tuple[str, RelPath]] = [("", "")]
    while pending:
        disk_folder, folder = pending.pop()
        try:
            with os.scandir(root / disk_folder if disk_folder else root) as entries:
                listed = list(entries)
        except OSError as error:
            if not folder:
                raise ScanError(
                    f"The sync folder {root} cannot be read: {error.strerror}."
                ) from error
            result.errors.append((folder, f"cannot list this folder: {error.strerror}"))
            continue
        for entry in listed:
            disk = f"{disk_folder}/{entry.name}" if disk_folder else entry.name
            name = unicodedata.normalize("NFC", entry.name)
            path = f"{folder}/{name}" if folder else name
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                # Bytes that are not UTF-8 (os.scandir keeps them as surrogates): no server
                # name can hold them.
                result.errors.append((path, "the name is not valid UTF-8: skipped"))
                continue
            try:
                info = _stat(entry)
            except OSError as error:
                result.errors.append((path, f"cannot read: {error.strerror}"))
                continue
            is_dir = stat.S_ISDIR(info.st_mode)
            if rules.ignored(path, is_dir):
                continue
            if path in claimed:
                result.errors.append(
                    (path, "another name in this folder is the same in Unicode NFC: skipped")
                )
                continue
            claimed.add(path)
            if stat.S_ISLNK(info.st_mode):
                result.errors.append((path, "a symbolic link: skipped"))
                continue
            if not is_dir and not stat.S_ISREG(info.st_mode):
                result.errors.append((path, "not a regular file: skipped"))
                continue
            if disk != path:
                result.disk_paths[path] = disk
            inode = _inode(info)
            if is_dir:
                result.items[path] = LocalItem(path, Kind.FOLDER, None, inode, info.st_mtime_ns)
                pending.append((disk, path))
                continue
            seen.add(inode)
            content = _content(root / disk, info, cache, new, result, path)
            if content is not None:
                result.items[path] = LocalItem(path, Kind.FILE, content, inode, info.st_mtime_ns)
    stale = [inode for inode in cache if inode not in seen]
    if new or stale:
        journal.update_hashes(new, stale)
    return result


def _content(
    file: Path,
    info: os.stat_result,
    cache: dict[Inode, CachedHash],
    new: dict[Inode, CachedHash],
    result: Scan,
    path: RelPath,
) -> Content | None:
    """The file's content from the cache, else hashed now; None if it is being written (in
    `result.changing`) or cannot be read (in `result.errors`)."""
    inode = _inode(info)
    cached = cache.get(inode)
    if cached is not None and cached[:2] == (info.st_size, info.st_mtime_ns):
        return cached[2]
    try:
        result.hashed += 1
        hashed = hash_file(file)
        after = os.lstat(file)
    except (FileChanged, FileNotFoundError):
        # Being written, or replaced by an editor that deletes before it writes: the next
        # pass sees what it settled to.
        result.changing.append(path)
        return None
    except OSError as error:
        result.errors.append((path, f"cannot read: {error.strerror}"))
        return None
    # Changed between the directory listing and the hash: this hash is not of what `info`
    # describes.
    if (_inode(after), after.st_size, after.st_mtime_ns) != (
        inode,
        info.st_size,
        info.st_mtime_ns,
    ):
        result.changing.append(path)
        return None
    content = hashed.content
    if info.st_mtime_ns <= time.time_ns() - RACY_NS:
        new[inode] = (info.st_size, info.st_mtime_ns, content)
    return content
