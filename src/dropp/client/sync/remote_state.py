"""The remote tree as sync sees it: a mirror of the account kept up to date from the change
feed (docs/sync.md, "The change feed").

The mirror holds the account's whole own tree (shares are left out), keyed by node id, with
paths from the top level. Each page of the feed is applied in memory and written to the
journal with the cursor after it in one transaction, so a crash re-reads at most one page,
and entries apply idempotently: a snapshot's last cursor repeats changes it already showed.

The feed names only the node that changed: a moved folder's subtree moves with it, a deleted
folder's goes with it, and a restored folder comes alone, so its contents are listed with
`GET /folders` (and their hashes with `GET /list/`) before the page is written.
"""

import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from dropp.client.api import Api
from dropp.client.errors import ApiError, ClientError, NotFound
from dropp.client.hashing import Content
from dropp.client.remote import Node, children, clean_path, same_name
from dropp.client.sync.events import EventStream, StreamUnavailable
from dropp.client.sync.journal import Journal
from dropp.client.sync.model import Kind, NodeId, RelPath, RemoteItem

PAGE = 1000
# Snapshots started over when the tree changed under a listing or the mirror came out
# inconsistent, before giving up: each restart reads the whole tree.
RESTARTS = 3
# Seconds an HTTP read may take beyond the long-poll's own wait.
LONGPOLL_SLACK = 30
# How long the long-poll stands in for an event stream that could not be opened, before the
# stream is tried again.
STREAM_RETRY_SECONDS = 300.0


class Restart(Exception):
    """The mirror cannot be brought up to date from here: take a new snapshot."""


@dataclass
class Page:
    """What applying one page changed, for the journal."""

    mirror: dict[NodeId, RemoteItem]
    changed: set[NodeId] = field(default_factory=set)
    removed: set[NodeId] = field(default_factory=set)
    # Folders whose contents the feed will not name: restored ones, and ones moved in
    # from nowhere the mirror knows.
    to_list: set[NodeId] = field(default_factory=set)
    # Files moved in from nowhere the mirror knows, with the path the feed gave.
    to_fetch: dict[NodeId, RelPath] = field(default_factory=dict)

    def put(self, item: RemoteItem) -> None:
        self.mirror[item.node_id] = item
        self.changed.add(item.node_id)
        self.removed.discard(item.node_id)
        self.to_fetch.pop(item.node_id, None)

    def drop(self, node_id: NodeId) -> None:
        self.mirror.pop(node_id, None)
        self.changed.discard(node_id)
        self.removed.add(node_id)
        self.to_list.discard(node_id)
        self.to_fetch.pop(node_id, None)

    def under(self, path: RelPath) -> list[RemoteItem]:
        prefix = f"{path}/"
        return [item for item in self.mirror.values() if item.path.startswith(prefix)]


def _path(server_path: str) -> RelPath:
    return server_path.strip("/")


def _item(entry: dict[str, Any]) -> RemoteItem | None:
    """The node an entry describes; None for a file with no complete revision."""
    kind = Kind(entry["kind"])
    if kind is Kind.FOLDER:
        return RemoteItem(entry["node_id"], _path(entry["path"]), kind)
    if entry.get("revision_id") is None:
        return None
    return RemoteItem(
        entry["node_id"],
        _path(entry["path"]),
        kind,
        Content.remote(entry.get("size"), entry.get("content_hash")),
        entry["revision_id"],
    )


def apply_entry(page: Page, entry: dict[str, Any]) -> None:
    """One feed entry, applied so that applying it twice changes nothing more."""
    if entry.get("grant_id") is not None:
        return
    node_id, change = entry["node_id"], entry["change"]
    known = page.mirror.get(node_id)
    if change == "deleted":
        # A node the mirror does not know has no subtree in it either; its old path may
        # belong to a newer node by now.
        if known is None:
            return
        if known.kind is Kind.FOLDER:
            for child in page.under(known.path):
                page.drop(child.node_id)
        page.drop(node_id)
        return
    if change == "moved":
        # A move names no revision: a known node keeps what it had, an unknown one is
        # looked up once the page is read.
        path = _path(entry["path"])
        if known is None:
            if Kind(entry["kind"]) is Kind.FOLDER:
                page.put(RemoteItem(node_id, path, Kind.FOLDER))
                page.to_list.add(node_id)
            else:
                page.to_fetch[node_id] = path
            return
        if known.kind is Kind.FOLDER and known.path != path:
            start = len(known.path)
            for child in page.under(known.path):
                page.put(replace(child, path=path + child.path[start:]))
        page.put(replace(known, path=path))
        return
    item = _item(entry)
    if item is None:
        page.drop(node_id)
        return
    page.put(item)
    if change == "restored" and item.kind is Kind.FOLDER:
        page.to_list.add(node_id)


async def fetch_file(api: Api, page: Page, node_id: NodeId, path: RelPath) -> None:
    """A file the feed moved without the mirror knowing it: its revision from the server."""
    try:
        file = await api.get(f"/files/{node_id}")
    except ApiError as error:
        if error.status == 404:
            # Gone since: the feed says so further on.
            return
        raise
    if file["status"] != "complete" or file["revision_id"] is None:
        return
    page.put(
        RemoteItem(
            node_id,
            path,
            Kind.FILE,
            Content.remote(file["size"], file["content_hash"]),
            str(file["revision_id"]),
        )
    )


async def _hashes(api: Api, folder: str) -> dict[str, tuple[int | None, str | None]]:
    """(size, content_hash) of each complete file directly in a folder, by id."""
    found: dict[str, tuple[int | None, str | None]] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"folder": folder, "limit": PAGE}
        if cursor:
            params["cursor"] = cursor
        answer = await api.get("/list/", params=params)
        for file in answer["files"]:
            found[str(file["id"])] = (file["size"], file["content_hash"])
        cursor = answer["next_cursor"]
        if not cursor:
            return found


async def list_subtree(api: Api, page: Page, folder_id: NodeId) -> None:
    """Put in the mirror what a folder holds now, all the way down, replacing what the
    mirror thought it held."""
    folder = page.mirror[folder_id]
    for stale in page.under(folder.path):
        page.drop(stale.node_id)
    pending = [folder.path]
    while pending:
        path = pending.pop()
        files: list[Node] = []
        try:
            async for child in children(api, f"/{path}"):
                if child["kind"] == Kind.FOLDER:
                    page.put(RemoteItem(child["id"], _path(child["path"]), Kind.FOLDER))
                    pending.append(_path(child["path"]))
                elif child["status"] == "complete" and child["revision_id"] is not None:
                    files.append(child)
            hashes = await _hashes(api, f"/{path}") if files else {}
        except (NotFound, ApiError) as error:
            if isinstance(error, ApiError) and error.status != 404:
                raise
            # Moved or deleted since: the feed says so later, but not what it held.
            raise Restart from error
        for child in files:
            size, content_hash = hashes.get(child["id"], (child["size"], None))
            page.put(
                RemoteItem(
                    child["id"],
                    _path(child["path"]),
                    Kind.FILE,
                    Content.remote(size, content_hash),
                    child["revision_id"],
                )
            )


def orphans(mirror: dict[NodeId, RemoteItem]) -> list[RemoteItem]:
    """Nodes whose folder the mirror does not hold: a sign it missed something."""
    folders = {item.path for item in mirror.values() if item.kind is Kind.FOLDER}
    return [
        item
        for item in mirror.values()
        if "/" in item.path and item.path.rpartition("/")[0] not in folders
    ]


async def _pull(api: Api, journal: Journal, mirror: dict[NodeId, RemoteItem]) -> None:
    """Read the feed from the journal's cursor to its end, page by page."""
    cursor = journal.cursor
    while True:
        params: dict[str, Any] = {"limit": PAGE}
        if cursor is not None:
            params["cursor"] = cursor
        try:
            answer = await api.get("/sync/changes", params=params)
        except ApiError as error:
            # Pruned (410), or a cursor this server no longer accepts: only a new snapshot
            # goes on from here.
            if cursor is not None and (error.status == 410 or error.code == "invalid_cursor"):
                raise Restart from error
            raise
        reset = cursor is None
        if reset:
            mirror.clear()
        page = Page(mirror)
        for entry in answer["changes"]:
            apply_entry(page, entry)
        for node_id, path in sorted(page.to_fetch.items()):
            await fetch_file(api, page, node_id, path)
        for folder_id in sorted(page.to_list):
            if folder_id in page.mirror:
                await list_subtree(api, page, folder_id)
        if reset or page.changed or page.removed or answer["cursor"] != cursor:
            journal.apply_remote(
                (mirror[node_id] for node_id in page.changed),
                page.removed,
                answer["cursor"],
                reset=reset,
            )
        cursor = answer["cursor"]
        if not answer["has_more"]:
            return


async def refresh(api: Api, journal: Journal, remote_root: str) -> dict[NodeId, RemoteItem]:
    """Bring the journal's mirror up to date with the server, and return the live nodes
    under `remote_root`, with paths relative to it ({} when the server has no such
    folder yet)."""
    mirror = journal.remote()
    for _ in range(RESTARTS):
        try:
            await _pull(api, journal, mirror)
        except Restart:
            journal.set_cursor(None)
            continue
        if not orphans(mirror):
            return nodes_under(mirror, remote_root)
        journal.set_cursor(None)
    raise ClientError(
        "The files on the server kept changing while sync read them; try again in a moment."
    )


def _find_folder(mirror: dict[NodeId, RemoteItem], path: RelPath) -> RemoteItem | None:
    """The folder at `path`, spelled exactly, else one the server would take for it (names
    are one name after NFC and case folding)."""
    match: RemoteItem | None = None
    for item in mirror.values():
        if item.kind is not Kind.FOLDER:
            continue
        if item.path == path:
            return item
        if match is None and same_name(item.path, path):
            match = item
    return match


def nodes_under(mirror: dict[NodeId, RemoteItem], remote_root: str) -> dict[NodeId, RemoteItem]:
    """The nodes under a remote folder, paths relative to it and in NFC."""
    wanted = _path(clean_path(remote_root))
    if wanted:
        folder = _find_folder(mirror, wanted)
        if folder is None:
            return {}
        prefix = f"{folder.path}/"
        inside: Iterable[RemoteItem] = (
            item for item in mirror.values() if item.path.startswith(prefix)
        )
    else:
        prefix = ""
        inside = mirror.values()
    start = len(prefix)
    return {
        item.node_id: RemoteItem(
            item.node_id,
            unicodedata.normalize("NFC", item.path[start:]),
            item.kind,
            item.content,
            item.revision_id,
        )
        for item in inside
    }


# `timeout` is how long the server holds the request, part of the contract, not a
# cancellation of this coroutine.
async def wait(api: Api, cursor: str, timeout: int) -> bool:  # noqa: ASYNC109
    """Wait up to `timeout` seconds for changes after `cursor`; True when there are some
    (or the cursor expired, which the next refresh answers with a snapshot)."""
    params: dict[str, Any] = {"cursor": cursor, "timeout": timeout}
    try:
        answer = await api.get("/sync/longpoll", params=params, timeout=timeout + LONGPOLL_SLACK)
    except ApiError as error:
        if error.status == 410 or error.code == "invalid_cursor":
            return True
        if error.code != "timeout_too_long":
            raise
        # This server waits less: without a timeout it takes its own default.
        answer = await api.get(
            "/sync/longpoll", params={"cursor": cursor}, timeout=timeout + LONGPOLL_SLACK
        )
    return bool(answer["changes"])


class Waiter:
    """Waits for remote changes on the account's event stream (`GET /events`), one stream
    kept open across waits; with the long-poll while the stream cannot be opened (an older
    server, a proxy that blocks or buffers it), trying the stream again now and then."""

    def __init__(
        self,
        api: Api,
        longpoll_seconds: int,
        *,
        stream: EventStream | None = None,
        stream_retry_seconds: float = STREAM_RETRY_SECONDS,
    ) -> None:
        self.api = api
        self.longpoll_seconds = longpoll_seconds
        self.stream = stream or EventStream(api)
        self.stream_retry_seconds = stream_retry_seconds
        # While the long-poll stands in: until when (time.monotonic()).
        self._stream_again_at = 0.0

    async def wait(self, cursor: str) -> bool:
        """True when there may be changes after `cursor`, False when the long-poll's wait
        ended with none."""
        if time.monotonic() >= self._stream_again_at:
            try:
                await self.stream.changed(cursor)
            except StreamUnavailable:
                self._stream_again_at = time.monotonic() + self.stream_retry_seconds
            else:
                return True
        return await wait(self.api, cursor, self.longpoll_seconds)

    async def aclose(self) -> None:
        await self.stream.aclose()
