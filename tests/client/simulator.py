"""Both sides of a sync in memory, for the planner's tests: a server that behaves as Dropp does
(node ids kept across moves, names compared folded, `keep_both` on a stale base revision,
folders deleted with their subtree) and a local disk with inodes and mtimes, plus an executor
that runs a Plan on them with the checks and base records of `sync/executor.py`.

Nothing here is asynchronous or touches a disk: thousands of passes run in seconds.
"""

import hashlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from dropp.client.hashing import Content
from dropp.client.sync.model import (
    Action,
    BaseItem,
    CreateLocalFolder,
    CreateRemoteFolder,
    DeleteLocal,
    DeleteRemote,
    Download,
    KeepLocalCopy,
    Kind,
    LocalItem,
    MoveLocal,
    MoveRemote,
    NodeId,
    Plan,
    RecordBase,
    RelPath,
    RemoteItem,
    Skip,
    Trees,
    Upload,
)
from dropp.client.sync.names import name_key

ROOT = ""
DEVICE = "laptop"
TODAY = "2026-01-01"
PART_SIZE = 8 * 1024**2


class Refused(Exception):
    """What the server answers with a 4xx, or what the disk refuses with an OSError."""


def local_content(data: str) -> Content:
    """What the scanner states: both hash schemes."""
    digest = hashlib.sha256(data.encode()).hexdigest()
    parts = hashlib.sha256(bytes.fromhex(digest)).hexdigest()
    return Content(len(data), frozenset({f"sha256:{digest}", f"sha256-parts-{PART_SIZE}:{parts}"}))


def remote_content(data: str) -> Content:
    """What the server states: one scheme, the multipart one for some files."""
    digest = hashlib.sha256(data.encode()).hexdigest()
    if int(digest[0], 16) % 2:
        parts = hashlib.sha256(bytes.fromhex(digest)).hexdigest()
        return Content.remote(len(data), f"sha256-parts-{PART_SIZE}:{parts}")
    return Content.remote(len(data), f"sha256:{digest}")


def split(path: RelPath) -> tuple[RelPath, str]:
    parent, _, name = path.rpartition("/")
    return parent, name


def join(parent: RelPath, name: str) -> RelPath:
    return f"{parent}/{name}" if parent else name


def under(path: RelPath, folder: RelPath) -> bool:
    return path == folder or path.startswith(folder + "/")


def copy_name(name: str, attempt: int) -> str:
    dot = name.rfind(".")
    stem, extension = (name, "") if dot <= 0 else (name[:dot], name[dot:])
    number = f" {attempt}" if attempt > 1 else ""
    return f"{stem} (conflicted copy {DEVICE} {TODAY}{number}){extension}"


# --- the server ---------------------------------------------------------------------------


@dataclass
class Node:
    parent: NodeId
    name: str
    kind: Kind
    revisions: dict[str, str] = field(default_factory=dict)
    revision: str | None = None

    @property
    def data(self) -> str | None:
        return None if self.revision is None else self.revisions[self.revision]


class Server:
    def __init__(self) -> None:
        self.nodes: dict[NodeId, Node] = {}
        self.trash: dict[NodeId, Node] = {}
        self._ids = itertools.count(1)

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def path(self, node_id: NodeId) -> RelPath:
        if node_id == ROOT:
            return ""
        node = self.nodes[node_id]
        return join(self.path(node.parent), node.name)

    def child(self, parent: NodeId, name: str) -> NodeId | None:
        for node_id, node in self.nodes.items():
            if node.parent == parent and name_key(node.name) == name_key(name):
                return node_id
        return None

    def find(self, path: RelPath) -> NodeId | None:
        node_id: NodeId | None = ROOT
        for name in path.split("/") if path else []:
            assert node_id is not None
            node_id = self.child(node_id, name)
            if node_id is None:
                return None
        return node_id

    def children(self, node_id: NodeId) -> list[NodeId]:
        return sorted(n for n, node in self.nodes.items() if node.parent == node_id)

    def subtree(self, node_id: NodeId) -> Iterator[NodeId]:
        yield node_id
        for child in self.children(node_id):
            yield from self.subtree(child)

    def mkdir(self, path: RelPath) -> NodeId:
        """POST /folders: `mkdir -p`, the existing folder if there is one."""
        node_id: NodeId = ROOT
        for name in path.split("/") if path else []:
            found = self.child(node_id, name)
            if found is None:
                found = self._id("d")
                self.nodes[found] = Node(node_id, name, Kind.FOLDER)
            elif self.nodes[found].kind is not Kind.FOLDER:
                raise Refused(f"not_a_folder: {path}")
            node_id = found
        return node_id

    def upload(
        self, folder: RelPath, name: str, data: str, base_revision: str | None
    ) -> tuple[NodeId, str, RelPath, bool]:
        """POST /upload/ + complete with `keep_both`: (file id, revision, path, conflict)."""
        parent = self.mkdir(folder)
        existing = self.child(parent, name)
        revision = self._id("r")
        if existing is None:
            node_id = self._id("f")
            self.nodes[node_id] = Node(parent, name, Kind.FILE, {revision: data}, revision)
            return node_id, revision, self.path(node_id), False
        node = self.nodes[existing]
        if node.kind is not Kind.FILE:
            raise Refused(f"name_taken: {folder}/{name} is a folder")
        if node.data == data:
            assert node.revision is not None
            return existing, node.revision, self.path(existing), False
        if base_revision is not None and base_revision != node.revision:
            for attempt in itertools.count(1):
                copy = copy_name(node.name, attempt)
                if self.child(parent, copy) is None:
                    break
            node_id = self._id("f")
            self.nodes[node_id] = Node(parent, copy, Kind.FILE, {revision: data}, revision)
            return node_id, revision, self.path(node_id), True
        node.revisions[revision] = data
        node.revision = revision
        return existing, revision, self.path(existing), False

    def edit(self, node_id: NodeId, data: str) -> None:
        node = self.nodes[node_id]
        if node.data != data:
            revision = self._id("r")
            node.revisions[revision] = data
            node.revision = revision

    def move(self, node_id: NodeId, parent_path: RelPath, name: str) -> None:
        """PATCH /files/{id} or /folders/{id}."""
        if node_id not in self.nodes:
            raise Refused("not_found")
        parent = self.find(parent_path)
        if parent is None or (parent != ROOT and self.nodes[parent].kind is not Kind.FOLDER):
            raise Refused(f"folder_not_found: {parent_path}")
        if parent in set(self.subtree(node_id)):
            raise Refused("move_into_itself")
        holder = self.child(parent, name)
        if holder is not None and holder != node_id:
            raise Refused(f"name_taken: {join(parent_path, name)}")
        self.nodes[node_id].parent = parent
        self.nodes[node_id].name = name

    def delete(self, node_id: NodeId) -> None:
        """DELETE: the node and its live subtree to the trash."""
        for gone in list(self.subtree(node_id)):
            self.trash[gone] = self.nodes.pop(gone)

    def items(self) -> dict[NodeId, RemoteItem]:
        """What remote_state.refresh hands the planner."""
        items: dict[NodeId, RemoteItem] = {}
        for node_id, node in self.nodes.items():
            data = node.data
            items[node_id] = RemoteItem(
                node_id,
                self.path(node_id),
                node.kind,
                None if data is None else remote_content(data),
                node.revision,
            )
        return items


# --- the local disk -----------------------------------------------------------------------


@dataclass
class Entry:
    kind: Kind
    inode: tuple[int, int]
    data: str | None = None
    mtime_ns: int = 0


class Disk:
    """A case-sensitive file system (Linux): paths as typed, inodes, mtimes."""

    def __init__(self) -> None:
        self.entries: dict[RelPath, Entry] = {}
        self._inodes = itertools.count(1)
        self._clock = itertools.count(1)

    def inode(self) -> tuple[int, int]:
        return (1, next(self._inodes))

    def tick(self) -> int:
        return next(self._clock)

    def exists(self, path: RelPath) -> bool:
        return path == "" or path in self.entries

    def is_dir(self, path: RelPath) -> bool:
        return path == "" or (path in self.entries and self.entries[path].kind is Kind.FOLDER)

    def under(self, path: RelPath) -> list[RelPath]:
        return sorted(p for p in self.entries if under(p, path))

    def mkdirs(self, path: RelPath) -> None:
        parts = path.split("/") if path else []
        for index in range(1, len(parts) + 1):
            prefix = "/".join(parts[:index])
            entry = self.entries.get(prefix)
            if entry is None:
                self.entries[prefix] = Entry(Kind.FOLDER, self.inode(), mtime_ns=self.tick())
            elif entry.kind is not Kind.FOLDER:
                raise Refused(f"not a directory: {prefix}")

    def write(self, path: RelPath, data: str, *, same_inode: bool = True) -> None:
        entry = self.entries.get(path)
        inode = entry.inode if entry is not None and same_inode else self.inode()
        self.entries[path] = Entry(Kind.FILE, inode, data, self.tick())

    def rename(self, source: RelPath, target: RelPath) -> None:
        if not self.is_dir(split(target)[0]):
            raise Refused(f"no such folder: {split(target)[0]}")
        for path in self.under(source):
            self.entries[target + path[len(source) :]] = self.entries.pop(path)

    def remove(self, path: RelPath) -> None:
        for gone in self.under(path):
            del self.entries[gone]

    def scan(self) -> dict[RelPath, LocalItem]:
        return {
            path: LocalItem(
                path,
                entry.kind,
                None if entry.data is None else local_content(entry.data),
                entry.inode,
                entry.mtime_ns,
            )
            for path, entry in self.entries.items()
        }


# --- the executor -------------------------------------------------------------------------


@dataclass
class Outcome:
    done: int = 0
    deferred: int = 0
    failures: list[tuple[Action, str]] = field(default_factory=list)


class Executor:
    """`sync/executor.py` on the simulated sides: the same checks, the same base records."""

    def __init__(self, server: Server, disk: Disk, base: dict[NodeId, BaseItem]) -> None:
        self.server = server
        self.disk = disk
        self.base = base

    def run(self, plan: Plan, scan: dict[RelPath, LocalItem], limit: int | None = None) -> Outcome:
        self.scan = scan
        outcome = Outcome()
        for action in plan.actions[:limit]:
            try:
                if self.one(action):
                    outcome.done += 1
                else:
                    outcome.deferred += 1
            except Refused as error:
                outcome.failures.append((action, str(error)))
        return outcome

    # the base, as executor.py keeps it

    def _forget_subtree(self, node_id: NodeId) -> None:
        item = self.base.get(node_id)
        if item is None:
            return
        if item.kind is Kind.FOLDER:
            for other in list(self.base.values()):
                if other.node_id != node_id and under(other.path, item.path):
                    del self.base[other.node_id]
        del self.base[node_id]

    def _move_subtree(self, node_id: NodeId, source: RelPath, target: RelPath) -> None:
        for other in list(self.base.values()):
            if other.node_id == node_id:
                self.base[node_id] = replace(other, path=target)
            elif under(other.path, source) and other.path != source:
                self.base[other.node_id] = replace(other, path=target + other.path[len(source) :])

    def _unchanged_since_scan(self, path: RelPath) -> bool:
        seen = self.scan.get(path)
        entry = self.disk.entries.get(path)
        now = None if entry is None or entry.kind is not Kind.FILE else entry
        if seen is None or seen.kind is not Kind.FILE:
            return now is None
        if now is None or seen.content is None or now.data is None:
            return False
        return (len(now.data), now.mtime_ns) == (seen.content.size, seen.mtime_ns)

    def _inode(self, path: RelPath) -> tuple[int, int] | None:
        entry = self.disk.entries.get(path)
        return None if entry is None else entry.inode

    def _only_known(self, folder: RelPath) -> bool:
        known = {item.path for item in self.base.values()}
        for path in self.disk.under(folder):
            if path == folder:
                continue
            if path not in known:
                return False
            if self.disk.entries[path].kind is Kind.FILE and not self._unchanged_since_scan(path):
                return False
        return True

    def one(self, action: Action) -> bool:
        match action:
            case CreateRemoteFolder(path=path):
                node_id = self.server.mkdir(path)
                self.base[node_id] = BaseItem(node_id, path, Kind.FOLDER, inode=self._inode(path))
            case CreateLocalFolder(path=path, node_id=node_id):
                if self.disk.exists(path) and not self.disk.is_dir(path):
                    return False
                self.disk.mkdirs(path)
                self.base[node_id] = BaseItem(node_id, path, Kind.FOLDER, inode=self._inode(path))
            case Upload(path=path, base_revision=base_revision):
                entry = self.disk.entries.get(path)
                if entry is None or entry.data is None:
                    raise Refused(f"no file to upload at {path}")
                folder, name = split(path)
                node_id, revision, where, conflict = self.server.upload(
                    folder, name, entry.data, base_revision
                )
                content = remote_content(entry.data)
                seen = self.scan.get(path)
                if seen is not None and seen.content is not None and seen.content.same(content):
                    content = seen.content
                if conflict:
                    if not self.disk.exists(where):
                        self.disk.rename(path, where)
                        self.base[node_id] = BaseItem(
                            node_id, where, Kind.FILE, content, revision, self._inode(where)
                        )
                    return True
                self.base[node_id] = BaseItem(
                    node_id, path, Kind.FILE, content, revision, self._inode(path)
                )
            case Download(node_id=node_id, path=path, revision_id=revision, content=expected):
                if not self._unchanged_since_scan(path) or self.disk.is_dir(path):
                    return False
                node = self.server.nodes.get(node_id)
                if node is None or revision not in node.revisions:
                    raise Refused(f"not_found: {node_id}")
                data = node.revisions[revision]
                content = local_content(data)
                if expected.hashes and not content.same(expected):
                    raise Refused(f"{path}: the downloaded bytes are not the server's")
                self.disk.mkdirs(split(path)[0])
                # A temporary file renamed into place: a new inode.
                self.disk.write(path, data, same_inode=False)
                self.base[node_id] = BaseItem(
                    node_id, path, Kind.FILE, content, revision, self._inode(path)
                )
            case MoveRemote(node_id=node_id, source=source, target=target):
                parent, name = split(target)
                self.server.move(node_id, parent, name)
                self._move_subtree(node_id, source, target)
            case MoveLocal(node_id=node_id, source=source, target=target):
                if not self.disk.exists(source) or self.disk.exists(target):
                    return False
                self.disk.mkdirs(split(target)[0])
                self.disk.rename(source, target)
                self._move_subtree(node_id, source, target)
            case DeleteRemote(node_id=node_id, kind=kind):
                if kind is Kind.FOLDER and node_id in self.server.nodes:
                    known = set(self.base)
                    inside = list(self.server.subtree(node_id))[1:]
                    if any(n not in known for n in inside):
                        return False
                if node_id in self.server.nodes:
                    self.server.delete(node_id)
                self._forget_subtree(node_id)
            case DeleteLocal(node_id=node_id, kind=kind, path=path):
                if kind is Kind.FILE:
                    if not self._unchanged_since_scan(path):
                        return False
                elif self.disk.is_dir(path) and not self._only_known(path):
                    return False
                if self.disk.exists(path):
                    self.disk.remove(path)
                self._forget_subtree(node_id)
            case KeepLocalCopy(path=path, copy_path=copy):
                if not self.disk.exists(path) or self.disk.exists(copy):
                    return False
                self.disk.rename(path, copy)
            case RecordBase(node_id=node_id, item=None):
                self._forget_subtree(node_id)
            case RecordBase(node_id=node_id, item=BaseItem() as item):
                self.base[node_id] = item
            case Skip():
                pass
        return True


# --- a pair of sides and the base -----------------------------------------------------------


@dataclass
class World:
    server: Server = field(default_factory=Server)
    disk: Disk = field(default_factory=Disk)
    base: dict[NodeId, BaseItem] = field(default_factory=dict)

    def trees(self) -> Trees:
        return Trees(base=dict(self.base), local=self.disk.scan(), remote=self.server.items())

    def synced(self) -> None:
        """Make the base what both sides hold now (they must agree): a synced start."""
        self.base.clear()
        for node_id, node in self.server.nodes.items():
            path = self.server.path(node_id)
            entry = self.disk.entries[path]
            data = node.data
            self.base[node_id] = BaseItem(
                node_id,
                path,
                node.kind,
                None if data is None else local_content(data),
                node.revision,
                entry.inode,
            )

    def local_view(self) -> dict[RelPath, str | None]:
        return {path: entry.data for path, entry in self.disk.entries.items()}

    def remote_view(self) -> dict[RelPath, str | None]:
        return {self.server.path(n): node.data for n, node in self.server.nodes.items()}

    def contents(self) -> set[str]:
        return {d for d in self.local_view().values() if d is not None} | {
            d for d in self.remote_view().values() if d is not None
        }
