"""The remote tree by path: listing folders and finding a node from a path a person typed."""

import unicodedata
from collections.abc import AsyncIterator
from typing import Any, TypedDict

from dropp.client.api import Api
from dropp.client.errors import ApiError, NotFound

PAGE = 1000


class Node(TypedDict):
    """A child of a folder as `GET /folders` lists it."""

    id: str
    kind: str  # "file" or "folder"
    name: str
    path: str
    size: int | None
    content_type: str | None
    status: str | None
    revision_id: str | None
    created_at: str
    updated_at: str


def clean_path(path: str) -> str:
    """`a/b/`, `/a//b` and `/a/b` are one remote path; `/` is the top level."""
    parts = [part for part in path.replace("\\", "/").split("/") if part not in ("", ".")]
    if ".." in parts:
        raise NotFound(f"Remote paths cannot go up a level: {path!r}.")
    return "/" + "/".join(parts)


def split_path(path: str) -> tuple[str, str]:
    """(parent, name) of a clean path other than `/`."""
    parent, _, name = clean_path(path).rpartition("/")
    return parent or "/", name


def same_name(a: str, b: str) -> bool:
    """The server's rule: names are one name after NFC and case folding."""
    return unicodedata.normalize("NFC", a).casefold() == unicodedata.normalize("NFC", b).casefold()


async def children(api: Api, path: str) -> AsyncIterator[Node]:
    """Every live child of a folder, folders first, page by page."""
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"path": clean_path(path), "limit": PAGE}
        if cursor:
            params["cursor"] = cursor
        try:
            page = await api.get("/folders", params=params)
        except ApiError as error:
            if error.status == 404:
                raise NotFound(f"No folder at {clean_path(path)}.") from error
            raise
        for item in page["items"]:
            yield item
        cursor = page["next_cursor"]
        if not cursor:
            return


async def lookup(api: Api, path: str) -> Node | None:
    """The node at a path, or None; `/` has no node of its own."""
    parent, name = split_path(path)
    if not name:
        return None
    match: Node | None = None
    try:
        async for child in children(api, parent):
            if child["name"] == name:
                return child
            if match is None and same_name(child["name"], name):
                match = child
    except NotFound:
        return None
    return match


async def resolve(api: Api, path: str) -> Node:
    """The node at a path; NotFound names the path when there is none."""
    node = await lookup(api, path)
    if node is None:
        raise NotFound(f"Nothing at {clean_path(path)} on the server.")
    return node
