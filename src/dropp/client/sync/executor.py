"""Carries out a plan on both sides, recording in the base what each finished action agreed.

Every action is checked against what its side holds *now* before it touches anything: the
plan was made from a scan and a feed that may be seconds old, so a local file edited since
the scan is never replaced or trashed, and a remote folder that gained children since the
feed is never trashed. An action whose check fails is left for the next pass, which sees the
new state and plans again. The base changes only after an action succeeded, one record at a
time, so a crash anywhere leaves a base that is true for everything it says.
"""

import os
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from send2trash import send2trash  # type: ignore[import-untyped]

from dropp.client.api import Api
from dropp.client.errors import ApiError
from dropp.client.hashing import Content
from dropp.client.remote import children, clean_path
from dropp.client.sync.journal import Journal
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
    Skip,
    Trees,
    Upload,
)
from dropp.client.transfers import (
    Progress,
    TransferError,
    Uploaded,
    UploadRequest,
    download,
    upload_many,
)


@dataclass
class Outcome:
    """What one pass did: counts for the summary, and what failed (retried next pass)."""

    uploaded: int = 0
    downloaded: int = 0
    moved: int = 0
    deleted: int = 0
    created: int = 0
    conflicts: list[RelPath] = field(default_factory=list)
    failures: list[tuple[RelPath, str]] = field(default_factory=list)
    skipped: list[tuple[RelPath, str]] = field(default_factory=list)
    # Actions not taken because their side changed after planning: the next pass replans.
    deferred: int = 0

    @property
    def changed(self) -> int:
        return self.uploaded + self.downloaded + self.moved + self.deleted + self.created


def parent_of(path: RelPath) -> RelPath:
    return path.rpartition("/")[0]


def name_of(path: RelPath) -> str:
    return path.rpartition("/")[2]


def under(path: RelPath, folder: RelPath) -> bool:
    return path == folder or path.startswith(folder + "/")


def _stat_key(path: Path) -> tuple[int, int] | None:
    """(size, mtime_ns) of a regular file, None if there is none there."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return info.st_size, info.st_mtime_ns


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino


class Executor:
    def __init__(
        self,
        api: Api,
        journal: Journal,
        root: Path,
        remote_root: str,
        *,
        device: str,
        progress: Progress | None = None,
    ) -> None:
        self.api = api
        self.journal = journal
        self.root = root
        self.remote_root = clean_path(remote_root)
        self.device = device
        self.progress = progress

    # --- paths --------------------------------------------------------------------------

    def local(self, path: RelPath) -> Path:
        return self.root / path if path else self.root

    def remote(self, path: RelPath) -> str:
        if not path:
            return self.remote_root
        return clean_path(f"{self.remote_root}/{path}")

    # --- the pass ------------------------------------------------------------------------

    async def run(self, plan: Plan, trees: Trees) -> Outcome:
        outcome = Outcome()
        self._trees = trees
        self._base = dict(trees.base)
        uploads: list[Upload] = []
        for action in plan.actions:
            if isinstance(action, Upload):
                # Consecutive uploads go out together: one batch init and one batch complete
                # for many small files, instead of three round trips each.
                uploads.append(action)
                continue
            if uploads:
                await self._uploads(uploads, outcome)
                uploads = []
            try:
                await self._one(action, outcome)
            except (ApiError, TransferError, OSError) as error:
                path = getattr(action, "path", getattr(action, "source", ""))
                outcome.failures.append((path, str(error)))
        if uploads:
            await self._uploads(uploads, outcome)
        return outcome

    async def _one(self, action: Action, outcome: Outcome) -> None:
        match action:
            case CreateRemoteFolder():
                await self._create_remote_folder(action, outcome)
            case CreateLocalFolder():
                self._create_local_folder(action, outcome)
            case Download():
                await self._download(action, outcome)
            case MoveRemote():
                await self._move_remote(action, outcome)
            case MoveLocal():
                self._move_local(action, outcome)
            case DeleteRemote():
                await self._delete_remote(action, outcome)
            case DeleteLocal():
                self._delete_local(action, outcome)
            case KeepLocalCopy():
                self._keep_local_copy(action, outcome)
            case RecordBase():
                self._record_base(action.node_id, action.item)
            case Skip():
                outcome.skipped.append((action.path, action.reason))
            case Upload():
                await self._uploads([action], outcome)

    # --- the base ------------------------------------------------------------------------

    def _record(self, item: BaseItem) -> None:
        self.journal.record(item)
        self._base[item.node_id] = item

    def _forget(self, node_id: NodeId) -> None:
        self.journal.forget(node_id)
        self._base.pop(node_id, None)

    def _record_base(self, node_id: NodeId, item: BaseItem | None) -> None:
        if item is None:
            self._forget_subtree(node_id)
        else:
            self._record(item)

    def _forget_subtree(self, node_id: NodeId) -> None:
        item = self._base.get(node_id)
        if item is None:
            return
        if item.kind is Kind.FOLDER:
            with self.journal.batch():
                for other in list(self._base.values()):
                    if other.node_id != node_id and under(other.path, item.path):
                        self._forget(other.node_id)
        self._forget(node_id)

    def _move_subtree(self, node_id: NodeId, source: RelPath, target: RelPath) -> None:
        """A moved folder's base entries move with it: the node ids stay, the paths change."""
        with self.journal.batch():
            for other in list(self._base.values()):
                if other.node_id == node_id:
                    self._record(replace(other, path=target))
                elif under(other.path, source) and other.path != source:
                    self._record(replace(other, path=target + other.path[len(source) :]))

    def _local_item(self, path: RelPath) -> LocalItem | None:
        return self._trees.local.get(path)

    def _unchanged_since_scan(self, path: RelPath) -> bool:
        """The local file is still what the scan saw (or, for a scan without it, absent)."""
        seen = self._local_item(path)
        now = _stat_key(self.local(path))
        if seen is None or seen.kind is not Kind.FILE:
            return now is None
        if now is None or seen.content is None:
            return False
        return now == (seen.content.size, seen.mtime_ns)

    # --- folders -------------------------------------------------------------------------

    async def _create_remote_folder(self, action: CreateRemoteFolder, outcome: Outcome) -> None:
        answer = await self.api.post("/folders", {"path": self.remote(action.path)})
        self._record(
            BaseItem(
                answer["id"],
                action.path,
                Kind.FOLDER,
                inode=_inode(self.local(action.path)),
            )
        )
        outcome.created += 1

    def _create_local_folder(self, action: CreateLocalFolder, outcome: Outcome) -> None:
        target = self.local(action.path)
        if target.exists() and not target.is_dir():
            outcome.deferred += 1
            return
        target.mkdir(parents=True, exist_ok=True)
        self._record(BaseItem(action.node_id, action.path, Kind.FOLDER, inode=_inode(target)))
        outcome.created += 1

    # --- uploads and downloads -----------------------------------------------------------

    async def _uploads(self, actions: list[Upload], outcome: Outcome) -> None:
        requests = [
            UploadRequest(
                source=self.local(action.path),
                folder=self.remote(parent_of(action.path)),
                name=name_of(action.path),
                base_revision=action.base_revision,
                device=self.device,
            )
            for action in actions
        ]
        results = await upload_many(self.api, requests, progress=self.progress, resume=self.journal)
        with self.journal.batch():
            for action, result in zip(actions, results, strict=True):
                if isinstance(result, BaseException):
                    outcome.failures.append((action.path, str(result)))
                    continue
                self._uploaded(action, result, outcome)

    def _uploaded(self, action: Upload, result: Uploaded, outcome: Outcome) -> None:
        outcome.uploaded += 1
        seen = self._local_item(action.path)
        content = Content.remote(result.size, result.content_hash)
        if seen is not None and seen.content is not None and seen.content.same(content):
            # The scan's content carries both hash schemes; the server states one.
            content = seen.content
        if result.conflict is not None:
            # The server kept both: these bytes are a new file under a conflicted-copy name,
            # and the original node keeps the other side's edit. The local file takes the
            # copy's name so both exist on both sides; the original comes down next pass.
            copy = self._relative(result.path)
            outcome.conflicts.append(copy or action.path)
            if copy is not None and not self.local(copy).exists():
                os.replace(self.local(action.path), self.local(copy))
                self._record(
                    BaseItem(
                        result.file_id,
                        copy,
                        Kind.FILE,
                        content,
                        result.revision_id,
                        _inode(self.local(copy)),
                    )
                )
            return
        self._record(
            BaseItem(
                result.file_id,
                action.path,
                Kind.FILE,
                content,
                result.revision_id,
                _inode(self.local(action.path)),
            )
        )

    def _relative(self, remote_path: str) -> RelPath | None:
        """A server path as a path under this sync root, None if it is outside."""
        remote_path = clean_path(remote_path)
        if self.remote_root == "/":
            return remote_path.lstrip("/")
        if remote_path.startswith(self.remote_root + "/"):
            return remote_path[len(self.remote_root) + 1 :]
        return None

    async def _download(self, action: Download, outcome: Outcome) -> None:
        target = self.local(action.path)
        if not self._unchanged_since_scan(action.path):
            # Edited (or created) here after the scan: downloading would replace it.
            outcome.deferred += 1
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            outcome.deferred += 1
            return
        hashed = await download(
            self.api,
            action.node_id,
            target,
            expected=action.content,
            progress=self.progress,
            revision_id=action.revision_id,
        )
        content = hashed.content
        if action.content.hashes and not content.same(action.content):
            raise TransferError(f"{action.path}: the downloaded bytes are not the server's")
        self._record(
            BaseItem(
                action.node_id, action.path, Kind.FILE, content, action.revision_id, _inode(target)
            )
        )
        info = target.stat()
        self.journal.remember((info.st_dev, info.st_ino), info.st_size, info.st_mtime_ns, content)
        outcome.downloaded += 1

    # --- moves ---------------------------------------------------------------------------

    async def _move_remote(self, action: MoveRemote, outcome: Outcome) -> None:
        kind = "folders" if action.kind is Kind.FOLDER else "files"
        parent = parent_of(action.target)
        await self.api.patch(
            f"/{kind}/{action.node_id}",
            {"name": name_of(action.target), "parent_path": self.remote(parent)},
        )
        self._move_subtree(action.node_id, action.source, action.target)
        outcome.moved += 1

    def _move_local(self, action: MoveLocal, outcome: Outcome) -> None:
        source, target = self.local(action.source), self.local(action.target)
        if not source.exists() or target.exists():
            # Gone, or something took the name since the scan: replan rather than overwrite.
            outcome.deferred += 1
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(source, target)
        self._move_subtree(action.node_id, action.source, action.target)
        outcome.moved += 1

    # --- deletes -------------------------------------------------------------------------

    async def _delete_remote(self, action: DeleteRemote, outcome: Outcome) -> None:
        base = self._base.get(action.node_id)
        if action.kind is Kind.FOLDER:
            # Trashing a folder trashes what is in it now; anything there the base does not
            # know (added elsewhere since the feed was read) would go unseen. Only then.
            async for _ in self._unknown_remote_children(action.path):
                outcome.deferred += 1
                return
        kind = "folders" if action.kind is Kind.FOLDER else "files"
        try:
            await self.api.delete(f"/{kind}/{action.node_id}")
        except ApiError as error:
            if error.status != 404:
                raise
        if base is not None:
            self._forget_subtree(action.node_id)
        outcome.deleted += 1

    async def _unknown_remote_children(self, path: RelPath) -> AsyncIterator[str]:
        known = {item.node_id for item in self._base.values()}
        async for child in children(self.api, self.remote(path)):
            if child["id"] not in known:
                yield child["id"]
            elif child["kind"] == "folder":
                async for deeper in self._unknown_remote_children(f"{path}/{child['name']}"):
                    yield deeper

    def _delete_local(self, action: DeleteLocal, outcome: Outcome) -> None:
        target = self.local(action.path)
        if action.kind is Kind.FILE:
            if not self._unchanged_since_scan(action.path):
                outcome.deferred += 1
                return
        elif target.is_dir() and not self._only_known(action.path):
            outcome.deferred += 1
            return
        if target.exists() or target.is_symlink():
            send2trash(target)
        self._forget_subtree(action.node_id)
        outcome.deleted += 1

    def _only_known(self, folder: RelPath) -> bool:
        """Everything inside a local folder is in the base, unchanged since the scan."""
        known = {item.path for item in self._base.values()}
        top = self.local(folder)
        for directory, folders, files in os.walk(top):
            relative = Path(directory).relative_to(self.root).as_posix()
            for name in (*folders, *files):
                path = f"{relative}/{name}" if relative != "." else name
                if path not in known:
                    return False
                if name in files and not self._unchanged_since_scan(path):
                    return False
        return True

    def _keep_local_copy(self, action: KeepLocalCopy, outcome: Outcome) -> None:
        source, copy = self.local(action.path), self.local(action.copy_path)
        if not source.exists() or copy.exists():
            outcome.deferred += 1
            return
        os.rename(source, copy)
        outcome.conflicts.append(action.copy_path)
