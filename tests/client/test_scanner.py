"""The scanner on a real directory: what it lists, what it leaves out, and what it hashes."""

import os
import time
import tracemalloc
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import pytest

from dropp.client.hashing import Content, FileHash, hash_file
from dropp.client.sync import scanner
from dropp.client.sync.ignore import IgnoreRules
from dropp.client.sync.journal import CachedHash, Inode, Journal
from dropp.client.sync.model import Kind
from dropp.client.sync.scanner import Scan, ScanError, scan

# Files a person has not touched for an hour: settled, so their hashes are cached.
AN_HOUR_AGO = time.time() - 3600


@pytest.fixture
def root(tmp_path: Path) -> Path:
    made = tmp_path / "Dropp"
    made.mkdir()
    return made


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal.open(tmp_path / "config" / "sync" / "test.sqlite") as opened:
        yield opened


def write(path: Path, data: bytes | str = b"data", *, settled: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if settled:
        os.utime(path, (AN_HOUR_AGO, AN_HOUR_AGO))
    return path


def scan_of(root: Path, journal: Journal) -> Scan:
    return scan(root, journal, IgnoreRules.load(root))


def test_folders_and_files_are_listed_with_their_content_and_inode(
    root: Path, journal: Journal
) -> None:
    write(root / "notes.txt", "notes\n")
    write(root / "empty.bin", b"")
    write(root / "docs" / "deep" / "report.pdf", os.urandom(3000))
    (root / "an empty folder").mkdir()

    found = scan_of(root, journal)

    assert set(found.items) == {
        "notes.txt",
        "empty.bin",
        "docs",
        "docs/deep",
        "docs/deep/report.pdf",
        "an empty folder",
    }
    report = found.items["docs/deep/report.pdf"]
    info = (root / "docs" / "deep" / "report.pdf").stat()
    assert report.kind is Kind.FILE
    assert report.content == hash_file(root / "docs" / "deep" / "report.pdf").content
    assert report.inode == (info.st_dev, info.st_ino)
    assert report.mtime_ns == info.st_mtime_ns
    assert found.items["empty.bin"].content is not None
    assert found.items["empty.bin"].content.size == 0
    folder = found.items["docs/deep"]
    assert (folder.kind, folder.content) == (Kind.FOLDER, None)
    assert folder.inode is not None
    assert (found.hashed, found.changing, found.errors) == (3, [], [])


def test_temporary_and_system_files_are_ignored_but_droppignore_syncs(
    root: Path, journal: Journal
) -> None:
    for name in (
        ".DS_Store",
        "docs/Thumbs.db",
        "desktop.ini",
        "~$report.docx",
        ".~lock.sheet.ods#",
        "draft.tmp",
        ".notes.txt.swp",
        "backup.txt~",
        ".photo.jpg.dropp-part",
        ".dropp-upload-1234",
        "video.mp4.crdownload",
        "docs/Icon\r",
        ".Trashes/501/x.txt",
        "$RECYCLE.BIN/desktop.ini",
    ):
        write(root / name)
    write(root / ".droppignore", "")
    write(root / "report.docx")

    assert set(scan_of(root, journal).items) == {".droppignore", "docs", "report.docx"}


def test_droppignore_takes_gitignore_rules_and_can_bring_back_a_built_in(
    root: Path, journal: Journal
) -> None:
    write(
        root / ".droppignore",
        "# build output\nbuild/\n*.log\n!keep.log\n/top-only.txt\n!*.tmp\nnode_modules\n",
    )
    for name in (
        "build/out.bin",
        "src/build/out.bin",
        "debug.log",
        "logs/keep.log",
        "top-only.txt",
        "docs/top-only.txt",
        "wanted.tmp",
        "web/node_modules/lib/index.js",
        "web/app.js",
    ):
        write(root / name)
    # A file named like a folder rule is not a folder.
    write(root / "docs" / "build")

    found = scan_of(root, journal)

    assert set(found.items) == {
        ".droppignore",
        "src",
        "logs",
        "logs/keep.log",
        "docs",
        "docs/top-only.txt",
        "docs/build",
        "wanted.tmp",
        "web",
        "web/app.js",
    }
    # An ignored folder is not entered: nothing under it was hashed.
    assert found.hashed == 6


def test_a_second_scan_hashes_nothing(root: Path, journal: Journal) -> None:
    for index in range(20):
        write(root / f"folder{index % 3}" / f"file{index}.txt", f"file {index}\n")

    first = scan_of(root, journal)
    second = scan_of(root, journal)

    assert (first.hashed, second.hashed) == (20, 0)
    assert second.items == first.items


def test_a_touched_file_is_hashed_again(root: Path, journal: Journal) -> None:
    touched = write(root / "touched.txt", "same bytes\n")
    write(root / "other.txt", "other\n")
    first = scan_of(root, journal)

    os.utime(touched, (AN_HOUR_AGO + 60, AN_HOUR_AGO + 60))
    second = scan_of(root, journal)

    assert second.hashed == 1
    assert second.items["touched.txt"].content == first.items["touched.txt"].content
    assert second.items["touched.txt"].mtime_ns != first.items["touched.txt"].mtime_ns


def test_an_edited_file_has_its_new_content(root: Path, journal: Journal) -> None:
    edited = write(root / "edited.txt", "version one\n")
    first = scan_of(root, journal)

    write(edited, "version two, longer\n")
    os.utime(edited, (AN_HOUR_AGO + 60, AN_HOUR_AGO + 60))
    second = scan_of(root, journal)

    assert second.hashed == 1
    assert second.items["edited.txt"].content == hash_file(edited).content
    assert not second.items["edited.txt"].content.same(first.items["edited.txt"].content)


def test_a_file_rewritten_while_it_is_hashed_is_left_for_the_next_pass(
    root: Path, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    busy = write(root / "busy.log", os.urandom(3 * 1024 * 1024))
    write(root / "quiet.txt", "quiet\n")

    def hash_while_written(path: Path, progress: Callable[[int], None] | None = None) -> FileHash:
        written = False

        def append(_: int) -> None:
            # Another program writes to the file once the first chunk is read.
            nonlocal written
            if path == busy and not written:
                written = True
                with open(path, "ab") as handle:
                    handle.write(b"more")

        return hash_file(path, append)

    monkeypatch.setattr(scanner, "hash_file", hash_while_written)
    found = scan_of(root, journal)

    assert found.changing == ["busy.log"]
    assert "busy.log" not in found.items
    assert found.uncertain("busy.log")
    assert not found.uncertain("quiet.txt")
    assert "quiet.txt" in found.items
    # Its torn hash was not remembered: the next quiet pass hashes it.
    monkeypatch.undo()
    os.utime(busy, (AN_HOUR_AGO, AN_HOUR_AGO))
    again = scan_of(root, journal)
    assert again.hashed == 1
    assert again.items["busy.log"].content == hash_file(busy).content


def test_a_file_written_just_now_is_hashed_again_until_it_settles(
    root: Path, journal: Journal
) -> None:
    fresh = write(root / "fresh.txt", "just saved\n", settled=False)
    write(root / "old.txt", "old\n")

    assert scan_of(root, journal).hashed == 2
    # Its mtime is too close to the hash to rule out a write in the same clock tick.
    assert scan_of(root, journal).hashed == 1
    os.utime(fresh, (AN_HOUR_AGO, AN_HOUR_AGO))
    assert scan_of(root, journal).hashed == 1
    assert scan_of(root, journal).hashed == 0


def test_symbolic_links_are_skipped_not_followed(
    root: Path, journal: Journal, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    write(outside / "secret.txt")
    write(root / "real.txt")
    (root / "linked folder").symlink_to(outside, target_is_directory=True)
    (root / "linked.txt").symlink_to(root / "real.txt")
    (root / "dangling").symlink_to(tmp_path / "nothing")

    found = scan_of(root, journal)

    assert set(found.items) == {"real.txt"}
    assert sorted(found.errors) == [
        ("dangling", "a symbolic link: skipped"),
        ("linked folder", "a symbolic link: skipped"),
        ("linked.txt", "a symbolic link: skipped"),
    ]
    assert found.uncertain("linked folder/secret.txt")


def test_decomposed_names_come_out_composed(root: Path, journal: Journal) -> None:
    decomposed = unicodedata.normalize("NFD", "Café")
    write(root / decomposed / f"{unicodedata.normalize('NFD', 'résumé')}.txt", "cv\n")

    found = scan_of(root, journal)

    assert set(found.items) == {"Café", "Café/résumé.txt"}
    assert all(unicodedata.is_normalized("NFC", path) for path in found.items)
    # What to open on disk is still the name the file system holds.
    assert found.disk_path(root, "Café/résumé.txt").read_text() == "cv\n"
    assert found.disk_path(root, "Café").name == decomposed


def test_two_names_equal_in_nfc_are_reported_not_merged(root: Path, journal: Journal) -> None:
    write(root / unicodedata.normalize("NFC", "é.txt"), "composed")
    write(root / unicodedata.normalize("NFD", "é.txt"), "decomposed")

    found = scan_of(root, journal)

    assert set(found.items) == {"é.txt"}
    assert found.errors == [
        ("é.txt", "another name in this folder is the same in Unicode NFC: skipped")
    ]


def test_hashes_of_files_gone_are_dropped_from_the_cache(root: Path, journal: Journal) -> None:
    gone = write(root / "gone.txt", "bye\n")
    write(root / "kept.txt", "hi\n")
    scan_of(root, journal)
    gone_inode = (gone.stat().st_dev, gone.stat().st_ino)
    assert gone_inode in journal.hash_cache()

    gone.unlink()
    scan_of(root, journal)

    assert gone_inode not in journal.hash_cache()
    assert len(journal.hash_cache()) == 1


def test_a_missing_root_is_an_error_not_an_empty_tree(tmp_path: Path, journal: Journal) -> None:
    with pytest.raises(ScanError, match="cannot be read"):
        scan(tmp_path / "unmounted", journal, IgnoreRules.of())
    write(tmp_path / "a file")
    with pytest.raises(ScanError, match="not a folder"):
        scan(tmp_path / "a file", journal, IgnoreRules.of())


class CountingJournal(Journal):
    """The journal, counting how the scanner reads and writes it."""

    calls: list[str]

    def hash_cache(self) -> dict[Inode, CachedHash]:
        self.calls.append("hash_cache")
        return super().hash_cache()

    def cached(self, inode: Inode, size: int, mtime_ns: int) -> Content | None:
        raise AssertionError("a scan reads the whole cache at once")

    def remember(self, inode: Inode, size: int, mtime_ns: int, content: Content) -> None:
        raise AssertionError("a scan writes its new hashes at once")

    def update_hashes(self, new: Mapping[Inode, CachedHash], stale: Iterable[Inode] = ()) -> None:
        self.calls.append("update_hashes")
        super().update_hashes(new, stale)


def test_ten_thousand_unchanged_files_are_rescanned_without_hashing(
    root: Path, tmp_path: Path
) -> None:
    for folder in range(100):
        directory = root / f"folder {folder:03}"
        directory.mkdir()
        for index in range(100):
            write(directory / f"file {index:03}.txt", f"{folder}/{index}\n")
    rules = IgnoreRules.load(root)
    journal = CountingJournal.open(tmp_path / "counting.sqlite")
    assert isinstance(journal, CountingJournal)
    journal.calls = []
    try:
        first = scan(root, journal, rules)
        assert (first.hashed, len(first.items)) == (10_000, 10_100)
        assert journal.calls == ["hash_cache", "update_hashes"]

        journal.calls = []
        tracemalloc.start()
        started = time.perf_counter()
        second = scan(root, journal, rules)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        journal.close()

    assert second.hashed == 0
    assert second.items == first.items
    # One read of the cache, no write: nothing changed.
    assert journal.calls == ["hash_cache"]
    # What the scan must hold anyway (10,100 items, the cache), and no more.
    assert peak < 40 * 1024 * 1024, f"peak {peak / 1024**2:.1f} MiB"
    # Directory entries and a stat per file: seconds would mean it read files or the journal
    # file by file. Generous for a loaded machine.
    assert elapsed < 15, f"{elapsed:.1f} s"
