"""The sync journal: one SQLite file per sync root, holding what sync must remember.

- the base: the last state both sides agreed on, one row per node id;
- the remote mirror: the whole account tree as the change feed described it, and the cursor
  it has read up to;
- the hash cache: a file's content by (device, inode, size, mtime), so unchanged files are
  never hashed again;
- in-flight transfers (`transfers.ResumeStore`), so an interrupted upload resumes;
- what the journal is for (root, server, remote folder, account), so it never syncs another
  pair.

WAL with `synchronous=NORMAL`: a commit survives the process being killed (a power cut may
lose the last few, which the next pass finds again: it re-reads the feed from the cursor it
kept and rescans the disk). Every write is its own short transaction unless grouped with
`batch()`, so a crash at any point leaves the journal as it was after the last commit.
"""

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from dropp.client.errors import ClientError
from dropp.client.hashing import Content
from dropp.client.remote import clean_path
from dropp.client.sync.model import BaseItem, Kind, NodeId, RemoteItem

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE base (
    node_id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    size INTEGER,
    hashes TEXT,
    revision_id TEXT,
    dev INTEGER,
    ino INTEGER
);
CREATE TABLE remote (
    node_id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    size INTEGER,
    hashes TEXT,
    revision_id TEXT
);
-- One row per inode: a file that changes replaces its row, so old contents do not pile up.
CREATE TABLE hash_cache (
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hashes TEXT NOT NULL,
    PRIMARY KEY (dev, ino)
) WITHOUT ROWID;
CREATE TABLE transfer (key TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID;
"""

# Keys of the meta table: the pair, the feed cursor, and what the engine notes for itself,
# each under its own prefix so that none can overwrite another.
PAIR_PREFIX = "pair."
NOTE_PREFIX = "note."
CURSOR_KEY = "feed.cursor"

Inode = tuple[int, int]
# (size, mtime_ns, content) of one inode.
CachedHash = tuple[int, int, Content]


class JournalError(ClientError):
    """The journal cannot be used: damaged, from a newer client, or for another pair."""


@dataclass(frozen=True)
class Meta:
    """What a journal syncs: a local root with a remote folder of one account on one server."""

    root: str
    server: str
    remote: str
    account: str

    @classmethod
    def of(cls, root: Path, server: str, remote: str, account: str) -> "Meta":
        return cls(str(root.resolve()), server.rstrip("/"), clean_path(remote), account)


def journal_path(config_dir: Path, root: Path, server: str, remote: str) -> Path:
    """Where the engine keeps the journal of this pair: `<config dir>/sync/<hash>.sqlite`."""
    meta = Meta.of(root, server, remote, "")
    key = "\0".join((meta.root, meta.server, meta.remote)).encode()
    return config_dir / "sync" / f"{hashlib.sha256(key).hexdigest()[:20]}.sqlite"


def _hashes(content: Content | None) -> str | None:
    return None if content is None else json.dumps(sorted(content.hashes))


def _content(size: int | None, hashes: str | None) -> Content | None:
    if hashes is None:
        return None
    return Content(size or 0, frozenset(json.loads(hashes)))


class Journal:
    """An open journal. Not for two processes at once: the engine holds one per root."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection
        # The executor may record from worker threads; one transaction at a time.
        self._lock = threading.RLock()
        self._depth = 0

    @classmethod
    def open(cls, path: Path, meta: Meta | None = None) -> "Journal":
        """Open (or create) the journal at `path`; with `meta`, refuse one for another pair."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            connection = sqlite3.connect(
                path, timeout=30, isolation_level=None, check_same_thread=False
            )
            journal = cls(path, connection)
            journal._prepare()
        except sqlite3.DatabaseError as error:
            raise JournalError(f"The sync journal {path} cannot be read ({error}).") from error
        if meta is not None:
            try:
                journal.bind(meta)
            except JournalError:
                journal.close()
                raise
        return journal

    def _prepare(self) -> None:
        db = self._db
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise JournalError(f"The sync journal {self.path} cannot use WAL (got {mode}).")
        db.execute("PRAGMA synchronous=NORMAL")
        with self._write():
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            ).fetchone()
            if found is None:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
                return
            row = db.execute("SELECT max(version) FROM schema_version").fetchone()
        version = row[0] if row else None
        if version != SCHEMA_VERSION:
            raise JournalError(
                f"The sync journal {self.path} has schema version {version}; this dropp "
                f"reads version {SCHEMA_VERSION}. Use the dropp that wrote it, or delete the "
                "file to sync this folder afresh."
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- transactions -------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._depth:
                yield self._db
                return
            # IMMEDIATE: the write lock up front, so a transaction never fails halfway on a
            # reader that became a writer.
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._depth = 0

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group many writes in one transaction: all of them land, or none."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            with self._write():
                yield

    def _read(self, sql: str, parameters: Iterable[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, tuple(parameters)).fetchall()

    # --- meta ---------------------------------------------------------------------------------

    def _get(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def _set(self, db: sqlite3.Connection, key: str, value: str | None) -> None:
        if value is None:
            db.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    @property
    def meta(self) -> Meta | None:
        """The pair this journal syncs, once claimed."""
        values = {f.name: self._get(f"{PAIR_PREFIX}{f.name}") for f in fields(Meta)}
        if any(value is None for value in values.values()):
            return None
        return Meta(**{name: str(value) for name, value in values.items()})

    def bind(self, meta: Meta) -> None:
        """Claim a new journal for this pair, or refuse if it belongs to another."""
        with self._write() as db:
            current = self.meta
            if current is None:
                for f in fields(Meta):
                    self._set(db, f"{PAIR_PREFIX}{f.name}", getattr(meta, f.name))
                return
        for f in fields(Meta):
            mine, wanted = getattr(current, f.name), getattr(meta, f.name)
            if mine != wanted:
                raise JournalError(
                    f"The sync journal {self.path} belongs to {f.name} {mine!r}, not "
                    f"{wanted!r}: it never syncs another pair. Delete it to sync this folder "
                    "afresh."
                )

    def claim(self, *, root: str | Path, server: str, remote: str, account: str) -> None:
        """`bind` from the pair's parts, normalized as `Meta.of` does."""
        self.bind(Meta.of(Path(root), server, remote, account))

    def get_meta(self, key: str) -> str | None:
        """A value the engine keeps (when the last pass ran, what failed)."""
        return self._get(f"{NOTE_PREFIX}{key}")

    def set_meta(self, key: str, value: str | None) -> None:
        with self._write() as db:
            self._set(db, f"{NOTE_PREFIX}{key}", value)

    @property
    def cursor(self) -> str | None:
        """Where the remote mirror has read the change feed up to; None before a snapshot."""
        return self._get(CURSOR_KEY)

    def set_cursor(self, cursor: str | None) -> None:
        with self._write() as db:
            self._set(db, CURSOR_KEY, cursor)

    # --- the base -----------------------------------------------------------------------------

    def base(self) -> dict[NodeId, BaseItem]:
        rows = self._read(
            "SELECT node_id, path, kind, size, hashes, revision_id, dev, ino FROM base"
        )
        return {
            node_id: BaseItem(
                node_id=node_id,
                path=path,
                kind=Kind(kind),
                content=_content(size, hashes),
                revision_id=revision_id,
                inode=(dev, ino) if dev is not None and ino is not None else None,
            )
            for node_id, path, kind, size, hashes, revision_id, dev, ino in rows
        }

    def record(self, item: BaseItem) -> None:
        """What both sides now agree this node is."""
        dev, ino = item.inode if item.inode is not None else (None, None)
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO base "
                "(node_id, path, kind, size, hashes, revision_id, dev, ino) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    item.node_id,
                    item.path,
                    item.kind.value,
                    item.content.size if item.content else None,
                    _hashes(item.content),
                    item.revision_id,
                    dev,
                    ino,
                ),
            )

    def forget(self, node_id: NodeId) -> None:
        with self._write() as db:
            db.execute("DELETE FROM base WHERE node_id = ?", (node_id,))

    def reset_base(self) -> None:
        """Forget every agreement: both sides are compared afresh (no base, no deletes)."""
        with self._write() as db:
            db.execute("DELETE FROM base")

    # --- the remote mirror --------------------------------------------------------------------

    def remote(self) -> dict[NodeId, RemoteItem]:
        """The account's whole live tree, paths from its top level (`a/b.txt`)."""
        rows = self._read("SELECT node_id, path, kind, size, hashes, revision_id FROM remote")
        return {
            node_id: RemoteItem(
                node_id=node_id,
                path=path,
                kind=Kind(kind),
                content=_content(size, hashes),
                revision_id=revision_id,
            )
            for node_id, path, kind, size, hashes, revision_id in rows
        }

    def apply_remote(
        self,
        upserts: Iterable[RemoteItem],
        removed: Iterable[NodeId],
        cursor: str | None,
        *,
        reset: bool = False,
    ) -> None:
        """One page of the feed, with the cursor after it, in one transaction; `reset`
        empties the mirror first (a snapshot begins)."""
        with self._write() as db:
            if reset:
                db.execute("DELETE FROM remote")
            db.executemany("DELETE FROM remote WHERE node_id = ?", ((i,) for i in removed))
            db.executemany(
                "INSERT OR REPLACE INTO remote (node_id, path, kind, size, hashes, revision_id) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    (
                        item.node_id,
                        item.path,
                        item.kind.value,
                        item.content.size if item.content else None,
                        _hashes(item.content),
                        item.revision_id,
                    )
                    for item in upserts
                ),
            )
            self._set(db, CURSOR_KEY, cursor)

    # --- the hash cache -----------------------------------------------------------------------

    def cached(self, inode: Inode, size: int, mtime_ns: int) -> Content | None:
        """The content hashed for this inode, if the file still has that size and mtime."""
        rows = self._read(
            "SELECT hashes FROM hash_cache WHERE dev = ? AND ino = ? AND size = ? AND mtime_ns = ?",
            (*inode, size, mtime_ns),
        )
        return _content(size, rows[0][0]) if rows else None

    def remember(self, inode: Inode, size: int, mtime_ns: int, content: Content) -> None:
        self.update_hashes({inode: (size, mtime_ns, content)})

    def hash_cache(self) -> dict[Inode, CachedHash]:
        """The whole cache at once: what a scan reads instead of one query per file."""
        rows = self._read("SELECT dev, ino, size, mtime_ns, hashes FROM hash_cache")
        return {
            (dev, ino): (size, mtime_ns, Content(size, frozenset(json.loads(hashes))))
            for dev, ino, size, mtime_ns, hashes in rows
        }

    def update_hashes(self, new: Mapping[Inode, CachedHash], stale: Iterable[Inode] = ()) -> None:
        """Remember new hashes and drop those of inodes gone, in one transaction."""
        with self._write() as db:
            db.executemany("DELETE FROM hash_cache WHERE dev = ? AND ino = ?", stale)
            db.executemany(
                "INSERT OR REPLACE INTO hash_cache (dev, ino, size, mtime_ns, hashes) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    (dev, ino, size, mtime_ns, _hashes(content))
                    for (dev, ino), (size, mtime_ns, content) in new.items()
                ),
            )

    # --- in-flight transfers (transfers.ResumeStore) ------------------------------------------

    def load(self, key: str) -> dict[str, Any] | None:
        rows = self._read("SELECT state FROM transfer WHERE key = ?", (key,))
        if not rows:
            return None
        state = json.loads(rows[0][0])
        return state if isinstance(state, dict) else None

    def save(self, key: str, state: dict[str, Any]) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO transfer (key, state) VALUES (?, ?)",
                (key, json.dumps(state)),
            )

    def drop(self, key: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM transfer WHERE key = ?", (key,))
