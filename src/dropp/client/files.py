"""The remote tree by path, as a person names things: list, create, move, trash, restore,
and a file's revisions. What `dropp ls`, `mv`, `rm`, `restore` and `revert` call."""

import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypedDict

from dropp.client.api import Api
from dropp.client.errors import ApiError, ClientError, NotFound
from dropp.client.remote import Node, children, clean_path, lookup, resolve, split_path

PAGE = 1000


class TrashItem(TypedDict):
    """A trashed file or folder as `GET /trash` lists it (only what was trashed itself, not
    what went with a folder)."""

    id: str
    kind: str
    name: str
    original_path: str
    trashed_at: str
    purge_at: str


class Revision(TypedDict):
    """A completed revision of a file, as `GET /files/{id}/revisions` lists it."""

    revision_id: str
    size: int
    content_hash: str | None
    content_type: str
    created_at: str
    completed_at: str
    device: str | None
    uploaded_by: str | None
    uploaded_by_email: str | None
    current: bool


def _route(node: Node | TrashItem) -> str:
    return "/files" if node["kind"] == "file" else "/folders"


def _key(path: str) -> str:
    """A path as the server compares names: NFC, case folded."""
    return unicodedata.normalize("NFC", clean_path(path)).casefold()


async def _pages(api: Api, path: str, key: str, **params: Any) -> AsyncIterator[Any]:
    cursor: str | None = None
    while True:
        query = {"limit": PAGE, **params, **({"cursor": cursor} if cursor else {})}
        page = await api.get(path, params=query)
        for item in page[key]:
            yield item
        cursor = page["next_cursor"]
        if not cursor:
            return


async def listing(api: Api, path: str) -> list[Node]:
    """A folder's children, folders first; a file's path lists that file alone, as `ls`
    does."""
    if clean_path(path) != "/":
        node = await resolve(api, path)
        if node["kind"] == "file":
            return [node]
    return [child async for child in children(api, path)]


@dataclass(frozen=True)
class Made:
    path: str
    created: bool


async def make_folder(api: Api, path: str) -> Made:
    """The folder and any missing parents, like `mkdir -p`; an existing one is fine."""
    if clean_path(path) == "/":
        raise ClientError("The top level always exists: name a folder below it.")
    response = await api.request("POST", "/folders", json={"path": clean_path(path)})
    return Made(response.json()["path"], response.status_code == 201)


async def move(api: Api, source: str, target: str) -> tuple[Node, Node]:
    """Rename or move a file or folder, as `mv` does: into `target` when it is a folder,
    else to that path (whose folder must exist). The node before and after."""
    node = await resolve(api, source)
    body: dict[str, Any]
    existing = await lookup(api, target) if clean_path(target) != "/" else None
    if clean_path(target) == "/" or (
        existing is not None and existing["kind"] == "folder" and existing["id"] != node["id"]
    ):
        body = {"parent_path": existing["path"] if existing is not None else "/"}
    else:
        # Onto a path that names the node itself (another case of its name) is a rename.
        parent, name = split_path(target)
        body = {"parent_path": parent, "name": name}
    if node["kind"] == "file" and node["revision_id"] is not None:
        # A move cannot keep two versions: if the file changed since it was looked up, the
        # server refuses, rather than move bytes nobody here saw.
        body["base_revision"] = node["revision_id"]
    moved: Node = await api.patch(f"{_route(node)}/{node['id']}", body)
    return node, moved


async def trash(api: Api, path: str) -> Node:
    """Move a file or a folder (with everything in it) to the server's trash."""
    if clean_path(path) == "/":
        raise ClientError("The top level cannot go to the trash: name what to delete.")
    node = await resolve(api, path)
    await api.delete(f"{_route(node)}/{node['id']}")
    return node


async def trash_items(api: Api) -> list[TrashItem]:
    """Everything in the trash, newest first."""
    return [item async for item in _pages(api, "/trash", "items")]


async def restore(api: Api, path: str) -> Node:
    """Bring back the newest trashed item that was at `path`, with what went with it."""
    items = await trash_items(api)
    wanted = clean_path(path)
    exact = [item for item in items if item["original_path"] == wanted]
    matches = exact or [item for item in items if _key(item["original_path"]) == _key(wanted)]
    if not matches:
        # Something inside a trashed folder comes back with its folder, never alone.
        for item in items:
            if item["kind"] == "folder" and _key(wanted).startswith(
                _key(item["original_path"]) + "/"
            ):
                raise NotFound(
                    f"{wanted} went to the trash with {item['original_path']}: "
                    f"restore that folder (`dropp restore {item['original_path']}`)."
                )
        raise NotFound(f"Nothing in the trash was at {wanted}.")
    # The trash lists newest first: the first match is the one deleted last.
    item = matches[0]
    restored: Node = await api.post(f"{_route(item)}/{item['id']}/restore", {})
    return restored


async def _file(api: Api, path: str) -> Node:
    node = await resolve(api, path)
    if node["kind"] != "file":
        raise ClientError(f"{node['path']} is a folder: only files have revisions.")
    return node


async def revisions(api: Api, path: str) -> list[Revision]:
    """A file's completed revisions, newest first."""
    node = await _file(api, path)
    return [item async for item in _pages(api, f"/files/{node['id']}/revisions", "revisions")]


def pick_revision(found: list[Revision], wanted: str, path: str) -> Revision:
    """The revision `wanted` names: its id, or a prefix of it only one revision has."""
    prefix = wanted.strip().lower()
    if not prefix:
        raise ClientError("Name a revision: its id, or the first characters of it.")
    matches = [item for item in found if item["revision_id"].lower().startswith(prefix)]
    if not matches:
        raise NotFound(f"{path} has no revision {wanted}: `dropp revisions {path}` lists them.")
    if len(matches) > 1:
        raise ClientError(
            f"{wanted} begins {len(matches)} revisions of {path}: give more of the id."
        )
    return matches[0]


@dataclass(frozen=True)
class Reverted:
    file: dict[str, Any]
    revision: Revision
    # False when the file already served those bytes: the server changed nothing.
    changed: bool


async def revert(api: Api, path: str, wanted: str, *, device: str | None = None) -> Reverted:
    """Make an old revision's bytes the file's newest revision (copied inside storage)."""
    node = await _file(api, path)
    found = [item async for item in _pages(api, f"/files/{node['id']}/revisions", "revisions")]
    revision = pick_revision(found, wanted, node["path"])
    try:
        answer = await api.post(
            f"/files/{node['id']}/revisions/{revision['revision_id']}/restore",
            {"device": device} if device else {},
        )
    except ApiError as error:
        if error.status == 404:
            raise NotFound(f"{node['path']} no longer has revision {wanted}.") from error
        raise
    return Reverted(answer, revision, answer["revision_id"] != node["revision_id"])
