"""What a pass does, decided from three trees alone: the base, the local tree, the remote one.

`plan` is pure: no I/O, no clock. It works as Dropbox's Nucleus does, on nodes rather than
paths. Every item gets a node id (the server's for what the base or the remote side knows, a
made-up one for what is only local), its parent's node id and its name; the planner merges
the three trees into the tree both sides should hold, then lists, side by side, the actions
that turn each side into it.

Matching local items to base nodes, in order: the same path with the same inode (or an
unknown one); the base's inode at another path (a local move or rename; for a file whose
bytes changed, only if its old path no longer holds a file, since inodes are reused); the
same path whatever the inode (an editor's save-by-rename); and, for a folder whose inode is
unknown, the new folder its children moved to. Anything else local is new. Remote nodes keep
their id across moves, so a remote move is a node id at another path.

The rules, per node:
- Content: changed on one side only → that side's bytes go to the other (Upload against the
  revision the planner saw, Download of the remote revision); changed on both to the same
  bytes → RecordBase only; identical new files at one path with no base → RecordBase only.
- Conflicts keep both and never overwrite. A file both sides changed differently is uploaded
  against the *base's* revision, so the server keeps both: the local bytes become a new file
  beside it, `name (conflicted copy <device> <date>).ext`, which the executor gives the local
  file's name too; the other side's revision comes down on the next pass into the freed path.
  The server names the copy, so every device sees the same name. Where there is no base
  revision to name (two new files at one path, a new file where the other side placed a
  folder), the local item yields: KeepLocalCopy moves it to `name (conflicted copy).ext`
  (`copy_label`), it is uploaded as a new file, and the remote one comes down.
- Location: moved on one side → moved on the other (MoveRemote / MoveLocal, node ids kept);
  moved on both to different places → the remote move wins, the node is not duplicated.
  A move that would put a folder inside itself (each side moved one into the other) takes the
  remote tree's shape. Children follow their folder: a file edited on one side inside a
  folder renamed on the other ends up edited inside the renamed folder.
- Deletes: a node deleted on one side and unchanged on the other goes on both (a move is not
  a change: what was moved and deleted elsewhere goes, its bytes unchanged in the trash); one
  deleted on one side and edited on the other is kept (uploaded again as a new file, or
  downloaded again); nothing without a base is ever deleted. A folder is deleted only when
  nothing it holds stays: one deleted on one side while the other added or edited something
  inside is kept (re-created where it was deleted) with what stays; the rest goes.
- Names the local file system cannot hold (a remote `CON` on Windows, a name ending in a dot),
  local names that differ only by case (the server holds one of them), files the scan could
  not read and folders the remote listing does not place are skipped with the reason, with
  everything under them: no action touches them, so nothing of them is deleted either.

Order: structure before content, content before deletes. Contents first on the local side
are downloads of files that stay where they are (done before any local move, at the path the
scan saw them), and deletes of files whose folder is about to move. Then the local structure
(folders before what they hold, moves, new downloads), then the remote structure (folders,
moves, new uploads), then revisions uploaded, then the base, then deletes (children before
folders). A name a move or a new item needs is freed first: by the deletion of what held it
(if all of that goes), or by moving an item that must move anyway to a temporary name
(`name (moving).ext`, for swaps). What cannot be placed is skipped.

What the executor does with each action's base, which the planner relies on (executor.py):
Upload and Download record the node they produce; CreateLocalFolder and CreateRemoteFolder
record the folder; MoveLocal / MoveRemote set the node's path and rewrite the paths of base
entries under `source`; DeleteLocal / DeleteRemote and RecordBase(None) forget the node and
what the base holds under its path; KeepLocalCopy touches no base. The planner ends with
RecordBase for every node whose base would otherwise not be what both sides hold, so a base
left stale by a move (a node moved on both sides, a folder whose base path was not the move's
source) is put right in the same pass.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from enum import Enum

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
from dropp.client.sync.names import name_key, unstorable_name

ROOT: NodeId = ""
COPY_LABEL = "conflicted copy"
MOVING_LABEL = "moving"
# Ids for what has no server id; a server node id (a UUID) never holds a colon.
LOCAL_ID = "local:"


def plan(
    trees: Trees,
    *,
    windows: bool = False,
    case_insensitive: bool = False,
    copy_label: str = COPY_LABEL,
) -> Plan:
    """The actions that make both sides agree, in an order the executor runs one by one.

    `windows`: the local file system has Windows' name rules. `case_insensitive`: it folds
    case, so a rename that changes only case goes through a temporary name (a rename onto
    "the same" name would find the target taken). Names are always compared folded, as the
    server compares them. `copy_label` names local conflicted copies (the engine may pass the
    device's name and the date, as the server does).
    """
    return _Planner(trees, windows, case_insensitive, copy_label).run()


class Side(Enum):
    LOCAL = "local"
    REMOTE = "remote"


class Source(Enum):
    """Whose location a merged node takes."""

    LOCAL = "local"
    REMOTE = "remote"


class Bytes(Enum):
    """What a merged file holds, and who must transfer it."""

    SAME = "same"  # both sides hold it already
    LOCAL = "local"  # the local bytes go up
    REMOTE = "remote"  # the remote bytes come down
    CONFLICT = "conflict"  # both changed: upload against the base revision, keep both


@dataclass(slots=True)
class _Node:
    parent: NodeId
    name: str
    kind: Kind


class _Tree:
    """One side as nodes: parent id and name, children by name key."""

    def __init__(self) -> None:
        self.nodes: dict[NodeId, _Node] = {}
        self.kids: dict[NodeId, dict[str, NodeId]] = {}
        # Name keys also held by items without a slot (case clashes, skipped): nothing
        # may be placed there, a case-sensitive disk might put it on one of them.
        self.shadows: dict[NodeId, set[str]] = {}
        self._paths: dict[NodeId, RelPath] = {}

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nodes

    def add(
        self, node_id: NodeId, parent: NodeId, name: str, kind: Kind, *, slot: bool = True
    ) -> None:
        self.nodes[node_id] = _Node(parent, name, kind)
        # An item sharing another's name key (a case clash, skipped) holds no slot.
        if slot:
            self.kids.setdefault(parent, {})[name_key(name)] = node_id
        else:
            self.shadows.setdefault(parent, set()).add(name_key(name))

    def _unslot(self, node_id: NodeId) -> None:
        node = self.nodes[node_id]
        siblings = self.kids.get(node.parent, {})
        if siblings.get(name_key(node.name)) == node_id:
            del siblings[name_key(node.name)]

    def remove(self, node_id: NodeId) -> None:
        self._unslot(node_id)
        del self.nodes[node_id]
        self.kids.pop(node_id, None)
        self._paths.clear()

    def move(self, node_id: NodeId, parent: NodeId, name: str) -> None:
        self._unslot(node_id)
        node = self.nodes[node_id]
        node.parent, node.name = parent, name
        self.kids.setdefault(parent, {})[name_key(name)] = node_id
        self._paths.clear()

    def relabel(self, old: NodeId, new: NodeId) -> None:
        node = self.nodes.pop(old)
        self.nodes[new] = node
        siblings = self.kids.get(node.parent, {})
        if siblings.get(name_key(node.name)) == old:
            siblings[name_key(node.name)] = new
        children = self.kids.pop(old, {})
        if children:
            self.kids[new] = children
        for child in children.values():
            self.nodes[child].parent = new
        shadows = self.shadows.pop(old, None)
        if shadows is not None:
            # Children that hold no slot (case clashes) are only found by their parent.
            self.shadows[new] = shadows
            for other in self.nodes.values():
                if other.parent == old:
                    other.parent = new
        self._paths.clear()

    def path(self, node_id: NodeId) -> RelPath:
        if node_id == ROOT:
            return ""
        cached = self._paths.get(node_id)
        if cached is None:
            node = self.nodes[node_id]
            parent = self.path(node.parent)
            cached = f"{parent}/{node.name}" if parent else node.name
            self._paths[node_id] = cached
        return cached

    def slot(self, parent: NodeId, name: str) -> NodeId | None:
        return self.kids.get(parent, {}).get(name_key(name))

    def free(self, parent: NodeId, name: str) -> bool:
        return self.slot(parent, name) is None and not self.shadowed(parent, name)

    def shadowed(self, parent: NodeId, name: str) -> bool:
        return name_key(name) in self.shadows.get(parent, ())

    def children(self, node_id: NodeId) -> list[NodeId]:
        return sorted(self.kids.get(node_id, {}).values())

    def within(self, node_id: NodeId, ancestor: NodeId) -> bool:
        """Whether `node_id` is `ancestor` or inside it."""
        while node_id != ROOT:
            if node_id == ancestor:
                return True
            node = self.nodes.get(node_id)
            if node is None:
                return False
            node_id = node.parent
        return ancestor == ROOT

    def subtree(self, node_id: NodeId) -> Iterator[NodeId]:
        """The node and everything under it, children before their folder."""
        for child in self.children(node_id):
            yield from self.subtree(child)
        yield node_id


@dataclass(slots=True)
class _Target:
    """Where a node ends up in the merged tree."""

    parent: NodeId
    name: str
    kind: Kind
    source: Source


def _depth(path: RelPath) -> int:
    return path.count("/")


def _same(a: Content | None, b: Content | None) -> bool:
    return a is not None and a.same(b)


def _join(parent: RelPath, name: str) -> RelPath:
    return f"{parent}/{name}" if parent else name


def _split(path: RelPath) -> tuple[RelPath, str]:
    parent, _, name = path.rpartition("/")
    return parent, name


def _under(path: RelPath, folder: RelPath) -> bool:
    return path == folder or path.startswith(folder + "/")


def _labelled(name: str, kind: Kind, label: str, number: int, windows: bool) -> str:
    """`report (label).pdf`, then `report (label 2).pdf`…; folders keep no extension."""
    stem, ext = name, ""
    if kind is Kind.FILE:
        head, dot, tail = name.rpartition(".")
        if dot and head:
            stem, ext = head, "." + tail
    suffix = f" ({label})" if number == 1 else f" ({label} {number})"
    limit = 255
    while stem and len((stem + suffix + ext).encode("utf-16-le" if windows else "utf-8")) > (
        limit * 2 if windows else limit
    ):
        stem = stem[:-1]
    return stem + suffix + ext


class _Planner:
    def __init__(self, trees: Trees, windows: bool, case_insensitive: bool, label: str) -> None:
        self.trees = trees
        self.windows = windows
        self.case_insensitive = case_insensitive
        if unstorable_name(_labelled("x", Kind.FILE, label, 2, windows), windows=windows):
            label = COPY_LABEL
        self.label = label
        self.actions: list[Action] = []
        self.skips: list[Skip] = []
        self.frozen: set[NodeId] = set()
        self.blocked: set[NodeId] = set()
        self.local_deletes = 0
        self.remote_deletes = 0
        # Nodes whose base an Upload, Download or folder creation of this plan records.
        self.recorded: set[NodeId] = set()
        # The base as the executor will have left it after each action so far.
        self.base_now: dict[NodeId, BaseItem] = dict(trees.base)

    # --- the pass ------------------------------------------------------------------------

    def run(self) -> Plan:
        self._base_tree()
        self._remote_tree()
        self._local_tree()
        self._freeze()
        self._pair()
        self._split_conflicts()
        self._merge()
        self._forget()
        self._early_local()
        self._structure(Side.LOCAL)
        self._structure(Side.REMOTE)
        self._revisions()
        self._record()
        self._deletes(Side.LOCAL)
        self._deletes(Side.REMOTE)
        skips = tuple(self.skips)
        return Plan(
            actions=skips + tuple(self.actions),
            local_deletes=self.local_deletes,
            remote_deletes=self.remote_deletes,
            skipped=skips,
        )

    # --- the three trees -----------------------------------------------------------------

    def _base_tree(self) -> None:
        """The base as a tree. An entry whose folder the base does not hold (left so by an
        interrupted pass) is not used: without a base a node is only ever added or kept."""
        self.base = _Tree()
        self.stale: set[NodeId] = set()
        by_path: dict[RelPath, NodeId] = {}
        for item in sorted(self.trees.base.values(), key=lambda i: (i.path, i.node_id)):
            by_path.setdefault(item.path, item.node_id)
        for item in sorted(self.trees.base.values(), key=lambda i: (_depth(i.path), i.path)):
            parent_path, name = _split(item.path)
            parent = by_path.get(parent_path) if parent_path else ROOT
            if (
                not item.path
                or by_path[item.path] != item.node_id
                or parent is None
                or (parent != ROOT and parent not in self.base)
                or self.base.slot(parent, name) is not None
            ):
                self.stale.add(item.node_id)
                continue
            self.base.add(item.node_id, parent, name, item.kind)

    def _remote_tree(self) -> None:
        self.remote = _Tree()
        self.remote_items: Mapping[NodeId, RemoteItem] = self.trees.remote
        by_path: dict[RelPath, NodeId] = {}
        items = sorted(
            self.remote_items.values(), key=lambda i: (_depth(i.path), i.path, i.node_id)
        )
        for item in items:
            by_path.setdefault(item.path, item.node_id)
        for item in items:
            if not item.path:
                continue
            parent_path, name = _split(item.path)
            parent = by_path.get(parent_path) if parent_path else ROOT
            if parent is None or (parent != ROOT and parent not in self.remote):
                self._freeze_one(item.node_id, item.path, "its folder is not in the remote listing")
                continue
            holder = self.remote.slot(parent, name)
            self.remote.add(item.node_id, parent, name, item.kind, slot=holder is None)
            if holder is not None:
                self._freeze_one(
                    item.node_id,
                    item.path,
                    f"differs only by case from {self.remote.path(holder)!r} on the server",
                )
            elif item.kind is Kind.FILE and item.content is None:
                self._freeze_one(item.node_id, item.path, "the server states no content for it")
            elif (reason := unstorable_name(name, windows=self.windows)) is not None:
                self._freeze_one(item.node_id, item.path, reason)

    def _local_tree(self) -> None:
        items = {path: item for path, item in self.trees.local.items() if path}
        matched = self._match(items)
        self.local = _Tree()
        self.local_items: dict[NodeId, LocalItem] = {}
        ids: dict[RelPath, NodeId] = {}
        by_depth: dict[int, list[RelPath]] = {}
        for path in items:
            by_depth.setdefault(_depth(path), []).append(path)
        for depth in sorted(by_depth):
            # Names of one folder that differ only by case: one slot, the rest skipped.
            slots: dict[tuple[NodeId, str], list[RelPath]] = {}
            for path in sorted(by_depth[depth]):
                parent_path, name = _split(path)
                parent = ids.get(parent_path) if parent_path else ROOT
                if parent is None:
                    # The scan lists a folder's children only with the folder: an orphan
                    # is a scan this planner cannot read. Leave the node alone.
                    self.frozen.add(matched.get(path, LOCAL_ID + path))
                    continue
                slots.setdefault((parent, name_key(name)), []).append(path)
            for (parent, _), paths in sorted(slots.items()):
                paths.sort(key=lambda p: (self._rank(p, matched.get(p)), p))
                for index, path in enumerate(paths):
                    item = items[path]
                    node_id = matched.get(path, LOCAL_ID + path)
                    ids[path] = node_id
                    self.local_items[node_id] = item
                    self.local.add(node_id, parent, _split(path)[1], item.kind, slot=not index)
                    if index:
                        self._freeze_one(
                            node_id,
                            path,
                            f"differs only by case from {paths[0]!r}: the server holds one "
                            "of the two",
                        )
                    elif item.kind is Kind.FILE and item.content is None:
                        self._freeze_one(node_id, path, "its content could not be read")

    def _rank(self, path: RelPath, node_id: NodeId | None) -> int:
        """Of local names that differ only by case, which keeps the name: the one synced at
        that very path, then one synced elsewhere, then the first new one."""
        if node_id is None:
            return 2
        return 0 if self.trees.base[node_id].path == path else 1

    def _match(self, items: Mapping[RelPath, LocalItem]) -> dict[RelPath, NodeId]:
        """Local paths of base nodes (see the module docstring for the order)."""
        claimed: dict[RelPath, NodeId] = {}
        found: dict[NodeId, RelPath] = {}

        def claim(path: RelPath, node_id: NodeId) -> None:
            claimed[path] = node_id
            found[node_id] = path

        by_inode: dict[tuple[int, int], RelPath | None] = {}
        for path, item in items.items():
            if item.inode is not None:
                # Two paths with one inode are hard links: neither tells a move.
                by_inode[item.inode] = None if item.inode in by_inode else path
        bases = sorted(
            (self.trees.base[node_id] for node_id in self.base.nodes), key=lambda b: b.path
        )
        for base in bases:
            here = items.get(base.path)
            if (
                here is not None
                and here.kind is base.kind
                and (base.inode is None or here.inode is None or here.inode == base.inode)
            ):
                claim(base.path, base.node_id)
        for base in bases:
            if base.node_id in found or base.inode is None:
                continue
            moved_to = by_inode.get(base.inode)
            if moved_to is None or moved_to in claimed or items[moved_to].kind is not base.kind:
                continue
            if base.kind is Kind.FILE and not _same(items[moved_to].content, base.content):
                at_old = items.get(base.path)
                if at_old is not None and at_old.kind is base.kind and base.path not in claimed:
                    # Changed bytes under a reused inode while the old path still holds a
                    # file: the old path is the better match.
                    continue
            claim(moved_to, base.node_id)
        for base in bases:
            here = items.get(base.path)
            if (
                base.node_id not in found
                and here is not None
                and here.kind is base.kind
                and base.path not in claimed
            ):
                claim(base.path, base.node_id)
        # Folders whose inode the base does not know: the new folder their children went to.
        for base in sorted(bases, key=lambda b: -_depth(b.path)):
            if base.node_id in found or base.kind is not Kind.FOLDER or base.inode is not None:
                continue
            votes: dict[RelPath, int] = {}
            for child in self.base.children(base.node_id):
                if child in found:
                    parent = _split(found[child])[0]
                    candidate = items.get(parent)
                    if (
                        parent
                        and parent not in claimed
                        and candidate is not None
                        and candidate.kind is Kind.FOLDER
                    ):
                        votes[parent] = votes.get(parent, 0) + 1
            if votes:
                claim(min(votes, key=lambda p: (-votes[p], p)), base.node_id)
        return claimed

    # --- what is left alone ----------------------------------------------------------------

    def _freeze_one(self, node_id: NodeId, path: RelPath, reason: str) -> None:
        self.frozen.add(node_id)
        self.skips.append(Skip(path, reason))

    def _freeze(self) -> None:
        """Frozen nodes take everything under them along, on either side."""
        uncertain = self.trees.uncertain

        def doubtful(path: RelPath) -> bool:
            while path:
                if path in uncertain:
                    return True
                path = _split(path)[0]
            return False

        if uncertain:
            for node_id in self.base.nodes:
                if doubtful(self.trees.base[node_id].path):
                    self.frozen.add(node_id)
            for node_id, item in self.remote_items.items():
                if doubtful(item.path):
                    self.frozen.add(node_id)
        grew = True
        while grew:
            grew = False
            for tree in (self.local, self.remote, self.base):
                for node_id, node in tree.nodes.items():
                    if node.parent in self.frozen and node_id not in self.frozen:
                        self.frozen.add(node_id)
                        grew = True

    def _pair(self) -> None:
        """A new local item where a new remote one has its name, the same kind (and, for a
        file, the same bytes), is that remote node: nothing to transfer."""
        taken = set(self.local.nodes)
        for node_id in list(self.local.nodes):
            if not node_id.startswith(LOCAL_ID) or node_id in self.frozen:
                continue
            node = self.local.nodes[node_id]
            other = self.remote.slot(node.parent, node.name)
            if (
                other is None
                or other in taken
                or other in self.base
                or other in self.frozen
                or self.remote.nodes[other].kind is not node.kind
            ):
                continue
            if node.kind is Kind.FILE and not _same(
                self.local_items[node_id].content, self.remote_items[other].content
            ):
                continue
            # Parents come before children in `nodes`, so children see the new parent id.
            self.local.relabel(node_id, other)
            self.local_items[other] = self.local_items.pop(node_id)
            taken.add(other)

    def _split_conflicts(self) -> None:
        """A file both sides changed whose base names no revision cannot be uploaded "against
        the base" (the server would take it as the newest): its local bytes become a new
        local item at that path, which then yields the name to the remote node."""
        for node_id in sorted(self.local.nodes):
            if (
                node_id in self.base
                and node_id in self.remote
                and node_id not in self.frozen
                and self.local.nodes[node_id].kind is Kind.FILE
                and self.trees.base[node_id].revision_id is None
                and self._changed_here(node_id)
                and self._changed_there(node_id)
                and not _same(self.local_items[node_id].content, self.remote_items[node_id].content)
            ):
                item = self.local_items.pop(node_id)
                self.local.relabel(node_id, LOCAL_ID + item.path)
                self.local_items[LOCAL_ID + item.path] = item

    # --- the merged tree -------------------------------------------------------------------

    def _merge(self) -> None:
        self.target: dict[NodeId, _Target] = {}
        self.bytes: dict[NodeId, Bytes] = {}
        self_alive: list[NodeId] = []
        ids = (set(self.base.nodes) | set(self.local.nodes) | set(self.remote.nodes)) - self.frozen
        for node_id in sorted(ids):
            base = self.base.nodes.get(node_id)
            here = self.local.nodes.get(node_id)
            there = self.remote.nodes.get(node_id)
            if here is None and there is None:
                continue
            if here is not None and there is not None:
                moved_here = base is not None and (here.parent, here.name) != (
                    base.parent,
                    base.name,
                )
                moved_there = base is not None and (there.parent, there.name) != (
                    base.parent,
                    base.name,
                )
                chosen, source = (
                    (here, Source.LOCAL)
                    if moved_here and not moved_there
                    else (there, Source.REMOTE)
                )
                self_alive.append(node_id)
            elif here is not None:
                chosen, source = here, Source.LOCAL
                if base is None or (here.kind is Kind.FILE and self._changed_here(node_id)):
                    self_alive.append(node_id)
            else:
                assert there is not None
                chosen, source = there, Source.REMOTE
                if base is None or (there.kind is Kind.FILE and self._changed_there(node_id)):
                    self_alive.append(node_id)
            self.target[node_id] = _Target(chosen.parent, chosen.name, chosen.kind, source)
            if chosen.kind is Kind.FILE:
                self.bytes[node_id] = self._bytes(node_id, here is not None, there is not None)
        self._break_cycles()
        self.alive: set[NodeId] = set()
        for node_id in self_alive:
            self._mark_alive(node_id)
        for tree in (self.local, self.remote):
            for node_id in self.frozen:
                node = tree.nodes.get(node_id)
                if node is not None and node.parent not in self.frozen:
                    # What is left alone keeps its folder on that side.
                    self._mark_alive(node.parent)
        self._settle_names()

    def _changed_here(self, node_id: NodeId) -> bool:
        base = self.trees.base[node_id]
        return not _same(self.local_items[node_id].content, base.content)

    def _changed_there(self, node_id: NodeId) -> bool:
        base = self.trees.base[node_id]
        remote = self.remote_items[node_id]
        if remote.revision_id is not None and base.revision_id is not None:
            return remote.revision_id != base.revision_id and not _same(
                remote.content, base.content
            )
        return not _same(remote.content, base.content)

    def _bytes(self, node_id: NodeId, here: bool, there: bool) -> Bytes:
        if not there:
            return Bytes.LOCAL
        if not here:
            return Bytes.REMOTE
        if node_id not in self.base:
            return Bytes.SAME  # paired: the same bytes
        changed_here, changed_there = self._changed_here(node_id), self._changed_there(node_id)
        if changed_here and changed_there:
            same = _same(self.local_items[node_id].content, self.remote_items[node_id].content)
            return Bytes.SAME if same else Bytes.CONFLICT
        if changed_here:
            return Bytes.LOCAL
        return Bytes.REMOTE if changed_there else Bytes.SAME

    def _break_cycles(self) -> None:
        """Each side moved a folder into the other: the remote tree's shape wins."""
        acyclic: set[NodeId] = {ROOT}
        for start in sorted(self.target):
            trail: list[NodeId] = []
            node_id = start
            while node_id not in acyclic:
                if node_id in trail:
                    loop = trail[trail.index(node_id) :]
                    switched = False
                    for member in loop:
                        there = self.remote.nodes.get(member)
                        if self.target[member].source is Source.LOCAL and there is not None:
                            self.target[member] = _Target(
                                there.parent, there.name, there.kind, Source.REMOTE
                            )
                            switched = True
                    if not switched:  # pragma: no cover - a loop always holds a local move
                        raise AssertionError(f"cannot break the move loop {loop}")
                    trail = []
                    node_id = start
                    continue
                trail.append(node_id)
                node_id = self.target[node_id].parent
            acyclic.update(trail)

    def _mark_alive(self, node_id: NodeId) -> None:
        while node_id != ROOT and node_id not in self.alive and node_id in self.target:
            self.alive.add(node_id)
            node_id = self.target[node_id].parent

    def _settle_names(self) -> None:
        """One node per name key in every merged folder. Where a local change (a new item, a
        local move) meets what the remote side or a skipped item holds, the local one takes
        a conflicted-copy name."""
        self.merged_kids: dict[NodeId, dict[str, list[NodeId]]] = {}
        for node_id in sorted(self.alive):
            target = self.target[node_id]
            self.merged_kids.setdefault(target.parent, {}).setdefault(
                name_key(target.name), []
            ).append(node_id)
        held: set[tuple[NodeId, str]] = set()
        for tree in (self.local, self.remote):
            for node_id in self.frozen:
                node = tree.nodes.get(node_id)
                if node is not None and tree.slot(node.parent, node.name) == node_id:
                    held.add((node.parent, name_key(node.name)))
        for parent in sorted(self.merged_kids):
            for key, claimants in sorted(self.merged_kids[parent].items()):
                if len(claimants) < 2 and (parent, key) not in held:
                    continue
                stay = [c for c in claimants if self.target[c].source is Source.REMOTE]
                if not stay and (parent, key) not in held:
                    stay = claimants[:1]
                for loser in claimants:
                    if loser not in stay:
                        self._rename(loser, self._free_name(parent, self.target[loser], self.label))

    def _rename(self, node_id: NodeId, name: str) -> None:
        target = self.target[node_id]
        siblings = self.merged_kids[target.parent]
        siblings[name_key(target.name)].remove(node_id)
        target.name = name
        siblings.setdefault(name_key(name), []).append(node_id)

    def _free_name(self, parent: NodeId, target: _Target, label: str) -> str:
        """A name free in the merged folder and in both sides' folder of that id."""
        number = 1
        while True:
            name = _labelled(target.name, target.kind, label, number, self.windows)
            key = name_key(name)
            if (
                not self.merged_kids.get(parent, {}).get(key)
                and self.local.free(parent, name)
                and self.remote.free(parent, name)
                and unstorable_name(name, windows=self.windows) is None
            ):
                return name
            number += 1

    def _merged_path(self, node_id: NodeId) -> RelPath:
        parts: list[str] = []
        while node_id != ROOT:
            target = self.target[node_id]
            parts.append(target.name)
            node_id = target.parent
        return "/".join(reversed(parts))

    def _stopped(self, node_id: NodeId) -> bool:
        """Whether this node, or a merged folder above it, could not be placed this pass."""
        while node_id != ROOT:
            if node_id in self.blocked:
                return True
            node_id = self.target[node_id].parent
        return False

    # --- the base as the executor leaves it ------------------------------------------------

    def _moved_in_base(self, node_id: NodeId, source: RelPath, target: RelPath) -> None:
        for other in list(self.base_now.values()):
            if other.node_id == node_id:
                self.base_now[node_id] = replace(other, path=target)
            elif _under(other.path, source) and other.path != source:
                self.base_now[other.node_id] = replace(
                    other, path=target + other.path[len(source) :]
                )

    def _forgotten_in_base(self, node_id: NodeId) -> None:
        item = self.base_now.pop(node_id, None)
        if item is not None and item.kind is Kind.FOLDER:
            for other in list(self.base_now.values()):
                if _under(other.path, item.path):
                    del self.base_now[other.node_id]

    def _emit(self, action: Action) -> None:
        self.actions.append(action)
        match action:
            case MoveLocal() | MoveRemote():
                self._moved_in_base(action.node_id, action.source, action.target)
            case DeleteLocal() | DeleteRemote():
                self._forgotten_in_base(action.node_id)
            case RecordBase(node_id=node_id, item=None):
                self._forgotten_in_base(node_id)
            case RecordBase(node_id=node_id, item=BaseItem() as item):
                self.base_now[node_id] = item
            case _:
                pass

    # --- actions, side by side -------------------------------------------------------------

    def _tree(self, side: Side) -> _Tree:
        return self.local if side is Side.LOCAL else self.remote

    def _misplaced(self, side: Side, node_id: NodeId) -> bool:
        node = self._tree(side).nodes.get(node_id)
        target = self.target[node_id]
        return node is None or (node.parent, node.name) != (target.parent, target.name)

    def _forget(self) -> None:
        """Nodes neither side holds any more, and nodes the server lost that come back as
        new ones, leave the base first: forgetting a folder forgets what the base holds
        under its path, which this plan may record anew."""
        for node_id in sorted(self.trees.base):
            if node_id in self.frozen or node_id in self.local or node_id in self.remote:
                continue
            item = self.base_now.get(node_id)
            if item is None:
                continue
            # Forgetting a folder forgets what the base holds under its path, which for a
            # stale entry may be true entries of other nodes.
            if (
                node_id in self.stale
                and item.kind is Kind.FOLDER
                and any(
                    _under(other.path, item.path) and other.node_id != node_id
                    for other in self.base_now.values()
                )
            ):
                continue
            self._emit(RecordBase(node_id, None))
        for node_id in sorted(self.alive):
            if node_id not in self.remote and node_id in self.base_now:
                # Gone on the server, kept here: it comes back as a new node.
                self._emit(RecordBase(node_id, None))
        for node_id in sorted(self.target):
            if node_id in self.alive or node_id not in self.base_now:
                continue
            tree = self.local if node_id in self.local else self.remote
            if tree.path(node_id) != self.base_now[node_id].path:
                # Deleted where it was moved to: its delete would forget the base under the
                # path it had, where this plan may place and record something else.
                self._emit(RecordBase(node_id, None))

    def _early_local(self) -> None:
        """Before any local move, so that the executor finds each at the path it was
        scanned at: downloads of new revisions into files that stay, and deletes of files
        whose folder moves."""
        for node_id in sorted(self.alive, key=self._merged_path):
            if (
                self.bytes.get(node_id) is Bytes.REMOTE
                and node_id in self.local
                and node_id in self.remote
            ):
                self._download(node_id, self.local.path(node_id))
        for node_id in sorted(self.local.nodes, key=self.local.path):
            if (
                node_id in self.target
                and node_id not in self.alive
                and self.local.nodes[node_id].kind is Kind.FILE
                and self._folder_moves(node_id)
            ):
                self._delete(Side.LOCAL, node_id)

    def _folder_moves(self, node_id: NodeId) -> bool:
        node_id = self.local.nodes[node_id].parent
        while node_id != ROOT:
            if node_id in self.alive and self._misplaced(Side.LOCAL, node_id):
                return True
            node_id = self.local.nodes[node_id].parent
        return False

    def _structure(self, side: Side) -> None:
        """Folders, moves and new items, so that this side has the merged tree's shape."""
        pending = sorted(
            (n for n in self.alive if self._misplaced(side, n) and not self._stopped(n)),
            key=lambda n: (_depth(self._merged_path(n)), self._merged_path(n)),
        )
        parked: set[NodeId] = set()
        while pending:
            waiting = [n for n in pending if not self._place(side, n)]
            if len(waiting) < len(pending):
                pending = waiting
                continue
            if self._park(side, pending, parked):
                continue
            tree = self._tree(side)
            for node_id in pending:
                if self._stopped(node_id):
                    continue
                target = self.target[node_id]
                holder = tree.slot(target.parent, target.name)
                if holder in self.frozen:
                    reason = f"{tree.path(holder)!r}, which is skipped, holds its name"
                else:
                    reason = "what holds its name cannot move out of the way"
                self._block(node_id, f"not placed on the {side.value} side: {reason}")
            return

    def _block(self, node_id: NodeId, reason: str) -> None:
        """Leave a node (and what the merged tree puts in it) for a later pass."""
        self.blocked.add(node_id)
        self.skips.append(Skip(self._merged_path(node_id), reason))

    def _place(self, side: Side, node_id: NodeId) -> bool:
        """Move or create one node where the merged tree has it, if it can be now."""
        if self._stopped(node_id):
            return True
        tree = self._tree(side)
        target = self.target[node_id]
        if target.parent != ROOT and target.parent not in tree:
            return False
        if node_id in tree and tree.within(target.parent, node_id):
            return False
        if (
            side is Side.REMOTE
            and node_id not in tree
            and target.parent != ROOT
            and (
                target.parent not in self.local
                or self.remote.path(target.parent) != self.local.path(target.parent)
            )
        ):
            # An upload (or a folder created for one) names one path for both sides: its
            # folder must first reach, on the server, the place it has here.
            return False
        if tree.shadowed(target.parent, target.name):
            self._block(
                node_id,
                f"a {side.value} name that differs from it only by case holds its place",
            )
            return True
        holder = tree.slot(target.parent, target.name)
        if holder is not None and holder != node_id and not self._clear(side, holder):
            return False
        if node_id in tree:
            self._move(side, node_id, target.parent, target.name)
        else:
            self._create(side, node_id)
        return True

    def _clear(self, side: Side, holder: NodeId) -> bool:
        """Delete what holds a needed name, if all of it goes anyway."""
        tree = self._tree(side)
        doomed = list(tree.subtree(holder))
        if any(n in self.alive or n in self.frozen or n not in self.target for n in doomed):
            return False
        for node_id in doomed:
            self._delete(side, node_id)
        return True

    def _park(self, side: Side, pending: list[NodeId], parked: set[NodeId]) -> bool:
        """Break a deadlock with a temporary name: a node that must move anyway leaves the
        name another needs (a swap), or a node leaves the folder that goes and whose name it
        takes (`d/a` becoming `d` as the folder `d` is deleted)."""
        tree = self._tree(side)
        for node_id in pending:
            target = self.target[node_id]
            holder = tree.slot(target.parent, target.name)
            if holder is None or holder == node_id:
                continue
            if (
                holder in self.alive
                and holder not in parked
                and not self._stopped(holder)
                and self._misplaced(side, holder)
            ):
                node = tree.nodes[holder]
                parked.add(holder)
                self._move(side, holder, node.parent, self._temporary(side, holder))
                return True
            if (
                holder not in self.alive
                and node_id in tree
                and node_id not in parked
                and tree.within(node_id, holder)
                and (target.parent == ROOT or target.parent in tree)
                and not tree.within(target.parent, node_id)
            ):
                parked.add(node_id)
                name = self._temporary(side, node_id, parent=target.parent)
                self._move(side, node_id, target.parent, name)
                return True
        return False

    def _temporary(self, side: Side, node_id: NodeId, parent: NodeId | None = None) -> str:
        """A name free in `parent` (the node's own folder by default) on this side and in
        the merged tree."""
        tree = self._tree(side)
        node = tree.nodes[node_id]
        parent = node.parent if parent is None else parent
        number = 1
        while True:
            name = _labelled(node.name, node.kind, MOVING_LABEL, number, self.windows)
            if (
                tree.free(parent, name)
                and not self.merged_kids.get(parent, {}).get(name_key(name))
                and unstorable_name(name, windows=self.windows) is None
            ):
                return name
            number += 1

    def _move(self, side: Side, node_id: NodeId, parent: NodeId, name: str) -> None:
        tree = self._tree(side)
        node = tree.nodes[node_id]
        if (
            side is Side.LOCAL
            and self.case_insensitive
            and node.parent == parent
            and name_key(node.name) == name_key(name)
            and node.name != name
        ):
            # "a" → "A" where case folds: the target "exists" (it is the source).
            self._move(side, node_id, parent, self._temporary(side, node_id))
        source = tree.path(node_id)
        target = _join(tree.path(parent), name)
        if side is Side.REMOTE:
            self._emit(MoveRemote(node_id, node.kind, source, target))
        elif node_id.startswith(LOCAL_ID):
            self._emit(KeepLocalCopy(source, target))
        else:
            self._emit(MoveLocal(node_id, node.kind, source, target))
        tree.move(node_id, parent, name)

    def _create(self, side: Side, node_id: NodeId) -> None:
        target = self.target[node_id]
        tree = self._tree(side)
        path = _join(tree.path(target.parent), target.name)
        if side is Side.LOCAL:
            if target.kind is Kind.FOLDER:
                self._emit(CreateLocalFolder(path, node_id))
                self.base_now[node_id] = BaseItem(node_id, path, Kind.FOLDER)
                self.recorded.add(node_id)
            else:
                self._download(node_id, path)
        else:
            if target.kind is Kind.FOLDER:
                self._emit(CreateRemoteFolder(path))
            else:
                self._emit(Upload(path))
            self.recorded.add(node_id)
        tree.add(node_id, target.parent, target.name, target.kind)

    def _download(self, node_id: NodeId, path: RelPath) -> None:
        remote = self.remote_items[node_id]
        assert remote.content is not None
        self._emit(Download(node_id, path, remote.revision_id, remote.content))
        self.base_now[node_id] = BaseItem(
            node_id, path, Kind.FILE, remote.content, remote.revision_id
        )
        self.recorded.add(node_id)

    def _revisions(self) -> None:
        """New revisions of files both sides hold, now at one path on both."""
        for node_id in sorted(self.alive, key=self._merged_path):
            wanted = self.bytes.get(node_id)
            if wanted not in (Bytes.LOCAL, Bytes.CONFLICT) or self._stopped(node_id):
                continue
            if node_id not in self.remote_items or node_id in self.recorded:
                continue
            path = self.local.path(node_id)
            if wanted is Bytes.LOCAL:
                revision = self.remote_items[node_id].revision_id
            else:
                # The base's revision, which the server no longer serves: it keeps both.
                revision = self.trees.base[node_id].revision_id
            self._emit(Upload(path, node_id, revision))
            self.recorded.add(node_id)

    def _record(self) -> None:
        """The base of every node both sides now hold alike, where it is not that yet."""
        for node_id in sorted(self.alive, key=self._merged_path):
            if (
                node_id in self.recorded
                or self._stopped(node_id)
                or node_id not in self.remote_items
                or node_id not in self.local
            ):
                continue
            here = self.local_items[node_id]
            there = self.remote_items[node_id]
            content: Content | None = None
            if here.kind is Kind.FILE:
                content = here.content
                if (
                    content is not None
                    and there.content is not None
                    and content.same(there.content)
                ):
                    content = Content(content.size, content.hashes | there.content.hashes)
            agreed = BaseItem(
                node_id,
                self._merged_path(node_id),
                here.kind,
                content,
                there.revision_id,
                here.inode,
            )
            now = self.base_now.get(node_id)
            if now is None or not self._agrees(now, agreed):
                self._emit(RecordBase(node_id, agreed))

    @staticmethod
    def _agrees(now: BaseItem, agreed: BaseItem) -> bool:
        return (
            now.path == agreed.path
            and now.kind is agreed.kind
            and now.revision_id == agreed.revision_id
            and (agreed.inode is None or now.inode == agreed.inode)
            and (agreed.content is None or agreed.content.same(now.content))
        )

    def _deletes(self, side: Side) -> None:
        """What neither side keeps, children before their folder; a folder still holding
        something (left alone, or not placed) stays."""
        tree = self._tree(side)
        for node_id in list(tree.subtree(ROOT)):
            if (
                node_id != ROOT
                and node_id in self.target
                and node_id not in self.alive
                and not tree.kids.get(node_id)
            ):
                self._delete(side, node_id)

    def _delete(self, side: Side, node_id: NodeId) -> None:
        tree = self._tree(side)
        node = tree.nodes[node_id]
        path = tree.path(node_id)
        counted = node.kind is Kind.FILE and node_id in self.trees.base
        if side is Side.LOCAL:
            self._emit(DeleteLocal(node_id, node.kind, path))
            self.local_deletes += counted
        else:
            self._emit(DeleteRemote(node_id, node.kind, path))
            self.remote_deletes += counted
        tree.remove(node_id)
