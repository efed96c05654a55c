"""The trees sync compares and the actions it plans.

Paths are relative to the sync root (or to the remote folder), `/`-separated, NFC, without a
leading slash; the root itself is "". Files and folders on the server are keyed by their
stable node id, which survives renames and moves; local ones by path, with the inode kept to
recognise a local move.

The base is the last state both sides agreed on, one entry per node id. An entry in the base
means "this node existed on both sides, like this": without one, a file missing on one side
is new on the other, never deleted.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from dropp.client.hashing import Content

NodeId = str
RelPath = str


class Kind(StrEnum):
    FILE = "file"
    FOLDER = "folder"


@dataclass(frozen=True)
class LocalItem:
    """A file or folder under the sync root, as the scanner found it."""

    path: RelPath
    kind: Kind
    # None for folders.
    content: Content | None = None
    # (st_dev, st_ino): a file keeps it across a rename on one file system.
    inode: tuple[int, int] | None = None
    mtime_ns: int = 0


@dataclass(frozen=True)
class RemoteItem:
    """A live node under the remote folder, as the change feed describes it."""

    node_id: NodeId
    path: RelPath
    kind: Kind
    content: Content | None = None
    revision_id: str | None = None


@dataclass(frozen=True)
class BaseItem:
    """What both sides agreed a node was, when they last agreed."""

    node_id: NodeId
    path: RelPath
    kind: Kind
    content: Content | None = None
    revision_id: str | None = None
    inode: tuple[int, int] | None = None


@dataclass(frozen=True)
class Trees:
    base: Mapping[NodeId, BaseItem]
    local: Mapping[RelPath, LocalItem]
    remote: Mapping[NodeId, RemoteItem]
    # Local paths the scan could not tell about (being written, unreadable, a folder it could
    # not list): absent from `local`, yet not deleted. What is at or under them is left alone.
    uncertain: frozenset[RelPath] = frozenset()


# --- actions ------------------------------------------------------------------------------
# Each action names everything the executor needs and what the base becomes once it is done.


@dataclass(frozen=True)
class CreateRemoteFolder:
    path: RelPath


@dataclass(frozen=True)
class CreateLocalFolder:
    path: RelPath
    node_id: NodeId


@dataclass(frozen=True)
class Upload:
    """Local bytes to the server: a new file (no node id) or a new revision of a node,
    against `base_revision` so the server keeps both if the file changed meanwhile."""

    path: RelPath
    node_id: NodeId | None = None
    base_revision: str | None = None


@dataclass(frozen=True)
class Download:
    """A remote file's current revision to `path`, replacing only what the base knew."""

    node_id: NodeId
    path: RelPath
    revision_id: str | None
    content: Content


@dataclass(frozen=True)
class MoveRemote:
    node_id: NodeId
    kind: Kind
    source: RelPath
    target: RelPath


@dataclass(frozen=True)
class MoveLocal:
    node_id: NodeId
    kind: Kind
    source: RelPath
    target: RelPath


@dataclass(frozen=True)
class DeleteRemote:
    """To the server's trash."""

    node_id: NodeId
    kind: Kind
    path: RelPath


@dataclass(frozen=True)
class DeleteLocal:
    """To the OS trash."""

    node_id: NodeId
    kind: Kind
    path: RelPath


@dataclass(frozen=True)
class KeepLocalCopy:
    """Both sides changed a file differently: the local bytes move aside to `copy_path` (a
    conflicted copy, uploaded as a new file by a later pass) before the remote bytes come."""

    path: RelPath
    copy_path: RelPath


@dataclass(frozen=True)
class RecordBase:
    """Both sides already agree (the same bytes, the same move, both deleted): only the
    base changes. `item` None forgets the node."""

    node_id: NodeId
    item: BaseItem | None


@dataclass(frozen=True)
class Skip:
    """Something this pass will not touch, and why (a name this file system cannot hold)."""

    path: RelPath
    reason: str


Action = (
    CreateRemoteFolder
    | CreateLocalFolder
    | Upload
    | Download
    | MoveRemote
    | MoveLocal
    | DeleteRemote
    | DeleteLocal
    | KeepLocalCopy
    | RecordBase
    | Skip
)


@dataclass(frozen=True)
class Plan:
    """Actions in an order the executor can run one after the other: parents before
    children, moves before what they make room for, deletes last."""

    actions: tuple[Action, ...] = ()
    # Files the base knows that this plan deletes, per side: what the mass-delete guard counts.
    local_deletes: int = 0
    remote_deletes: int = 0
    skipped: tuple[Skip, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not any(not isinstance(action, Skip) for action in self.actions)
