"""What a sync client does with the feed: page through it and keep a cursor."""

from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.helpers import Account


async def changes_page(
    client: httpx.AsyncClient, account: Account, cursor: str | None = None, **params: Any
) -> dict[str, Any]:
    query = {**params, **({"cursor": cursor} if cursor is not None else {})}
    response = await client.get("/sync/changes", params=query, headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def drain(
    client: httpx.AsyncClient, account: Account, cursor: str | None = None, **params: Any
) -> tuple[list[dict[str, Any]], str]:
    """Every entry after `cursor` (a whole snapshot first, without one) and the cursor to keep."""
    entries: list[dict[str, Any]] = []
    while True:
        page = await changes_page(client, account, cursor, **params)
        entries += page["changes"]
        cursor = page["cursor"]
        if not page["has_more"]:
            return entries, cursor


def files_only(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(entry["change"], entry["path"]) for entry in entries if entry["kind"] == "file"]


@dataclass
class Entry:
    path: str
    kind: str
    revision_id: str | None


@dataclass
class ReplayClient:
    """A desktop client's picture of the tree, built only from the feed: what it would sync.

    It keeps what went to the trash (the subtree of each deleted node), because a `restored`
    row names only the node the user restored and the client brings back what it had under it.
    """

    nodes: dict[str, Entry] = field(default_factory=dict)
    trashed: dict[str, dict[str, Entry]] = field(default_factory=dict)
    cursor: str | None = None

    def _subtree(self, path: str) -> dict[str, Entry]:
        return {
            node_id: entry
            for node_id, entry in self.nodes.items()
            if entry.path == path or entry.path.startswith(path + "/")
        }

    def apply(self, change: dict[str, Any]) -> None:
        node_id, path, kind = change["node_id"], change["path"], change["kind"]
        if change["change"] in ("created", "updated"):
            self.nodes[node_id] = Entry(path, kind, change["revision_id"])
        elif change["change"] == "moved":
            old = self.nodes[node_id].path
            for entry in self._subtree(old).values():
                entry.path = path + entry.path[len(old) :]
        elif change["change"] == "deleted":
            subtree = self._subtree(self.nodes[node_id].path)
            for gone in subtree:
                del self.nodes[gone]
            self.trashed[node_id] = subtree
        elif change["change"] == "restored":
            subtree = self.trashed.pop(node_id)
            old = subtree[node_id].path
            for restored_id, entry in subtree.items():
                entry.path = path + entry.path[len(old) :]
                self.nodes[restored_id] = entry
        else:
            raise AssertionError(f"unknown change {change}")

    async def sync(self, client: httpx.AsyncClient, account: Account) -> None:
        """Page through the feed (a snapshot first, the first time) and apply every entry."""
        entries, self.cursor = await drain(client, account, self.cursor)
        for entry in entries:
            self.apply(entry)

    def paths(self) -> dict[str, tuple[str, str | None]]:
        return {entry.path: (entry.kind, entry.revision_id) for entry in self.nodes.values()}


async def server_tree(
    client: httpx.AsyncClient, account: Account
) -> dict[str, tuple[str, str | None]]:
    """The live tree as a fresh snapshot shows it: path -> (kind, current revision)."""
    entries, _ = await drain(client, account, None, limit=1000)
    return {e["path"]: (e["kind"], e["revision_id"]) for e in entries}
