"""Share links: made for a path, listed, revoked. What `dropp share` calls."""

import re
from typing import Any, TypedDict

from dropp.client.api import Api
from dropp.client.errors import ApiError, ClientError, NotFound
from dropp.client.remote import clean_path, resolve

PAGE = 1000
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# What the server accepts for `expires_in` (docs/sharing.md).
MIN_EXPIRY_SECONDS = 60
MAX_EXPIRY_SECONDS = 365 * 86400
_DURATION = re.compile(r"\s*([0-9]+)\s*([smhdw])\s*", re.IGNORECASE)


class ShareLink(TypedDict):
    """A link as `GET /shares` lists it; a new one adds `token` and `url`."""

    id: str
    kind: str
    node_id: str
    name: str
    path: str
    expires_at: str | None
    expired: bool
    in_trash: bool
    password_protected: bool
    max_downloads: int | None
    downloads_used: int
    download_count: int
    created_at: str


def parse_duration(text: str) -> int:
    """Seconds in `30m`, `12h`, `7d` or `2w` (also `90s`), between 1 minute and 365 days."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as 30m, 12h, 7d or 2w")
    seconds = int(match[1]) * UNITS[match[2].lower()]
    if not MIN_EXPIRY_SECONDS <= seconds <= MAX_EXPIRY_SECONDS:
        raise ValueError(f"{text} is outside what a link may last: 1m to 365d")
    return seconds


async def create_link(
    api: Api,
    path: str,
    *,
    expires_in: int | None = None,
    password: str | None = None,
    max_downloads: int | None = None,
) -> dict[str, Any]:
    """A new link to the file or folder at `path`; its `url` is shown only in this answer."""
    if clean_path(path) == "/":
        raise ClientError("The top level cannot be shared: share a folder or a file in it.")
    node = await resolve(api, path)
    body: dict[str, Any] = {"file_id" if node["kind"] == "file" else "folder_id": node["id"]}
    if expires_in is not None:
        body["expires_in"] = expires_in
    if password is not None:
        body["password"] = password
    if max_downloads is not None:
        body["max_downloads"] = max_downloads
    created: dict[str, Any] = await api.post("/shares", body)
    return created


async def links(api: Api) -> list[ShareLink]:
    """Your links that are not revoked, newest first (expired ones too)."""
    found: list[ShareLink] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": PAGE, **({"cursor": cursor} if cursor else {})}
        page = await api.get("/shares", params=params)
        found.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return found


async def revoke(api: Api, wanted: str) -> ShareLink:
    """Revoke the link `wanted` names: its id, or a prefix of it only one link has."""
    prefix = wanted.strip().lower()
    if not prefix:
        raise ClientError("Name a link: its id, or the first characters of it.")
    matches = [link for link in await links(api) if link["id"].lower().startswith(prefix)]
    if not matches:
        raise NotFound(f"You have no link {wanted}: `dropp share ls` lists them.")
    if len(matches) > 1:
        raise ClientError(f"{wanted} begins {len(matches)} links: give more of the id.")
    link = matches[0]
    try:
        await api.delete(f"/shares/{link['id']}")
    except ApiError as error:
        if error.status == 404:
            raise NotFound(f"The link {link['id']} is gone already.") from error
        raise
    return link
