"""The sync journal on its own: what it keeps survives closing it, and it serves one pair."""

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dropp.client.errors import ClientError
from dropp.client.hashing import Content
from dropp.client.sync.journal import Journal, Meta, journal_path
from dropp.client.sync.model import BaseItem, Kind, RemoteItem
from dropp.client.transfers import ResumeStore

SERVER = "http://127.0.0.1:8000"
Reopen = Callable[[Journal], Journal]
CONTENT = Content(5, frozenset({"sha256:" + "ab" * 32, "sha256-parts-8388608:" + "cd" * 32}))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "config" / "sync" / "pair.sqlite"


@pytest.fixture
def journal(path: Path) -> Iterator[Journal]:
    with Journal.open(path) as opened:
        yield opened


@pytest.fixture
def reopened() -> Iterator[Reopen]:
    """Close a journal and open its file again, as the next run does; closes what it opened."""
    opened: list[Journal] = []

    def reopen(journal: Journal) -> Journal:
        journal.close()
        opened.append(Journal.open(journal.path))
        return opened[-1]

    yield reopen
    for journal in opened:
        journal.close()


def test_a_new_journal_is_created_with_its_folders_in_wal_mode(path: Path) -> None:
    with Journal.open(path) as journal:
        assert path.is_file()
        assert journal.cursor is None
        assert journal.base() == {}
        assert journal.remote() == {}
        assert journal.meta is None
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    raw.close()


def test_the_base_survives_a_reopen(journal: Journal, reopened: Reopen) -> None:
    folder = BaseItem("f1", "docs", Kind.FOLDER, inode=(1, 10))
    file = BaseItem("n1", "docs/a.txt", Kind.FILE, CONTENT, "r1", (1, 11))
    gone = BaseItem("n2", "docs/b.txt", Kind.FILE, Content(0, frozenset()), "r2")
    for item in (folder, file, gone):
        journal.record(item)
    journal.forget("n2")
    journal.record(BaseItem("n1", "docs/a.txt", Kind.FILE, CONTENT, "r3", (1, 11)))

    journal = reopened(journal)
    assert journal.base() == {"f1": folder, "n1": BaseItem(**{**vars(file), "revision_id": "r3"})}
    journal.reset_base()
    assert reopened(journal).base() == {}


def test_the_remote_mirror_and_its_cursor_survive_a_reopen(
    journal: Journal, reopened: Reopen
) -> None:
    docs = RemoteItem("f1", "Docs", Kind.FOLDER)
    report = RemoteItem("n1", "Docs/report.pdf", Kind.FILE, Content.remote(5, "sha256:00"), "r1")
    journal.apply_remote([docs, report], [], "cursor-1", reset=True)
    journal.apply_remote(
        [RemoteItem("n2", "b.txt", Kind.FILE, Content.remote(0, None), "r")], ["n1"], "cursor-2"
    )

    journal = reopened(journal)
    assert journal.cursor == "cursor-2"
    assert set(journal.remote()) == {"f1", "n2"}
    assert journal.remote()["n2"].content == Content(0, frozenset())
    # A new snapshot starts from nothing.
    journal.apply_remote([report], [], "cursor-3", reset=True)
    assert journal.remote() == {"n1": report}
    journal.set_cursor(None)
    assert reopened(journal).cursor is None


def test_the_hash_cache_survives_a_reopen_and_answers_only_an_unchanged_file(
    journal: Journal, reopened: Reopen
) -> None:
    journal.remember((1, 42), 5, 1_000, CONTENT)
    journal.update_hashes({(1, 43): (5, 2_000, CONTENT)})

    journal = reopened(journal)
    assert journal.cached((1, 42), 5, 1_000) == CONTENT
    assert journal.cached((1, 42), 5, 1_001) is None
    assert journal.cached((1, 42), 6, 1_000) is None
    assert journal.cached((2, 42), 5, 1_000) is None
    # One row per inode: the file's new state replaces the old.
    edited = Content(6, frozenset({"sha256:" + "ef" * 32}))
    journal.remember((1, 42), 6, 1_500, edited)
    assert journal.cached((1, 42), 5, 1_000) is None
    assert journal.cached((1, 42), 6, 1_500) == edited
    journal.update_hashes({}, stale=[(1, 43)])
    assert journal.hash_cache() == {(1, 42): (6, 1_500, edited)}


def test_transfers_are_saved_loaded_and_dropped_across_a_reopen(
    journal: Journal, reopened: Reopen
) -> None:
    store: ResumeStore = journal
    state = {"file_id": "f", "upload_id": "u", "parts": [1, 2], "sha256": "ab" * 32}
    store.save("upload:/tmp/a", state)
    store.save("upload:/tmp/b", {"file_id": "g"})
    assert store.load("nothing") is None

    journal = reopened(journal)
    assert journal.load("upload:/tmp/a") == state
    journal.drop("upload:/tmp/a")
    journal.drop("upload:/tmp/a")
    assert reopened(journal).load("upload:/tmp/a") is None


def test_a_failed_batch_writes_nothing(journal: Journal, reopened: Reopen) -> None:
    journal.record(BaseItem("kept", "kept.txt", Kind.FILE, CONTENT, "r"))

    def crash_halfway() -> None:
        with journal.batch():
            journal.record(BaseItem("n1", "a.txt", Kind.FILE, CONTENT, "r"))
            with journal.batch():
                journal.forget("kept")
                journal.set_cursor("half")
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        crash_halfway()
    assert set(journal.base()) == {"kept"}
    assert journal.cursor is None
    with journal.batch():
        journal.record(BaseItem("n1", "a.txt", Kind.FILE, CONTENT, "r"))
        journal.set_cursor("whole")
    assert set(reopened(journal).base()) == {"kept", "n1"}


def test_a_journal_refuses_another_root_server_remote_or_account(
    path: Path, tmp_path: Path
) -> None:
    mine = Meta.of(tmp_path / "Dropp", SERVER + "/", "/Work/", "account-1")
    with Journal.open(path, mine) as journal:
        assert journal.meta == Meta(
            str((tmp_path / "Dropp").resolve()), SERVER, "/Work", "account-1"
        )
    # The same pair, spelled differently, is the same pair.
    with Journal.open(path) as journal:
        journal.claim(
            root=tmp_path / "x" / ".." / "Dropp", server=SERVER, remote="Work", account="account-1"
        )

    others = {
        "root": Meta.of(tmp_path / "Elsewhere", SERVER, "/Work", "account-1"),
        "server": Meta.of(tmp_path / "Dropp", "https://other.example", "/Work", "account-1"),
        "remote": Meta.of(tmp_path / "Dropp", SERVER, "/Play", "account-1"),
        "account": Meta.of(tmp_path / "Dropp", SERVER, "/Work", "account-2"),
    }
    for field, other in others.items():
        with pytest.raises(ClientError, match=f"belongs to {field} "):
            Journal.open(path, other)
    with Journal.open(path) as journal:
        assert journal.meta == mine


def test_the_engines_notes_are_kept_apart_from_the_cursor(
    journal: Journal, reopened: Reopen
) -> None:
    journal.set_cursor("c1")
    journal.set_meta("cursor", "a note")
    journal.set_meta("last_sync", "1700000000.0")
    journal = reopened(journal)
    assert (journal.cursor, journal.get_meta("cursor")) == ("c1", "a note")
    assert journal.get_meta("last_sync") == "1700000000.0"
    journal.set_meta("last_sync", None)
    assert journal.get_meta("last_sync") is None


def test_each_pair_has_its_own_journal_under_the_config_dir(tmp_path: Path) -> None:
    config = tmp_path / "config"
    one = journal_path(config, tmp_path / "Dropp", SERVER, "/")
    assert one.parent == config / "sync"
    assert one.suffix == ".sqlite"
    assert journal_path(config, tmp_path / "a" / ".." / "Dropp", SERVER + "/", "") == one
    assert (
        len(
            {
                one,
                journal_path(config, tmp_path / "Other", SERVER, "/"),
                journal_path(config, tmp_path / "Dropp", "https://other.example", "/"),
                journal_path(config, tmp_path / "Dropp", SERVER, "/Work"),
            }
        )
        == 4
    )


def test_a_journal_from_a_newer_dropp_is_refused(path: Path) -> None:
    Journal.open(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE schema_version SET version = 99")
    raw.close()
    with pytest.raises(ClientError, match="schema version 99"):
        Journal.open(path)


def test_a_damaged_journal_is_a_clear_error(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ClientError, match="cannot be read"):
        Journal.open(path)
