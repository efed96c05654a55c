"""Share links: anyone holding the token sees the shared file or folder and downloads from it.

The token is 256 random bits, shown once; only its SHA-256 is stored. An unknown token, a
revoked or expired link, a link whose item is in the trash or gone, and a link of a disabled
account all answer the same `share_not_found`. A folder link reaches only the live nodes under
its folder: paths are resolved name by name from that folder, never from ids.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from uuid import UUID

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.auth import passwords
from dropp.auth.models import User
from dropp.auth.tokens import new_secret, secret_digest
from dropp.core.config import Settings
from dropp.core.pagination import CursorError, encode_cursor, newest_first
from dropp.downloads import service as downloads_service
from dropp.downloads.models import Channel
from dropp.downloads.service import Downloader
from dropp.files import service as files_service
from dropp.files import tree
from dropp.files.errors import FileNotFound, FileNotReady, FolderNotFound, InvalidCursor
from dropp.files.models import FileRevision, Node, NodeKind, RevisionState
from dropp.files.names import existing_path_names, name_key
from dropp.files.schemas import DownloadRead
from dropp.sharing import link_access
from dropp.sharing.link_errors import (
    DownloadLimitReached,
    InvalidSharePath,
    ShareLocked,
    ShareNotFound,
    ShareNotLocked,
    WrongPassword,
)
from dropp.sharing.link_schemas import (
    SharedFileRead,
    SharedFolderRead,
    SharedItem,
    ShareLinkCreate,
    ShareLinkCreated,
    ShareLinkPage,
    ShareLinkRead,
)
from dropp.sharing.models import ShareLink
from dropp.storage.s3 import Storage

# Tokens are 43 characters; anything much longer was not issued here and is not hashed.
MAX_TOKEN_LENGTH = 128
PUBLIC_PREFIX = "/s/"

NOT_FOUND = "This link does not exist, was revoked, or has expired."
NO_SUCH_LINK = "There is no such share link."
# One answer for every path that does not lead to a live item under the shared folder, so
# nothing can be learned about what lies outside it.
NO_SUCH_FILE = "There is no such file in this shared folder."
NO_SUCH_FOLDER = "There is no such folder in this shared folder."


@dataclass(frozen=True, slots=True)
class OpenLink:
    """A usable link and the live node it shares."""

    token: str
    link: ShareLink
    node: Node


def share_path(settings: Settings, token: str) -> str:
    """The link's path on this server (under PUBLIC_URL's path, if Dropp is mounted below one)."""
    return f"{urlsplit(settings.public_url).path.rstrip('/')}{PUBLIC_PREFIX}{token}"


def share_url(settings: Settings, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}{PUBLIC_PREFIX}{token}"


def _usable() -> ColumnElement[bool]:
    return and_(
        ShareLink.revoked_at.is_(None),
        or_(ShareLink.expires_at.is_(None), ShareLink.expires_at > func.now()),
    )


def downloads_left(link: ShareLink) -> int | None:
    if link.max_downloads is None:
        return None
    return max(0, link.max_downloads - link.downloads_used)


# --- the owner's side ------------------------------------------------------------------------


def _read(
    link: ShareLink, node: Node, path: str, download_count: int, now: datetime
) -> ShareLinkRead:
    return ShareLinkRead(
        id=link.id,
        kind=node.kind,
        node_id=node.id,
        name=node.name,
        path=path,
        expires_at=link.expires_at,
        expired=link.expires_at is not None and link.expires_at <= now,
        in_trash=node.trashed_at is not None,
        password_protected=link.password_hash is not None,
        max_downloads=link.max_downloads,
        downloads_used=link.downloads_used,
        download_count=download_count,
        created_at=link.created_at,
    )


async def create_link(
    session: AsyncSession, settings: Settings, owner_id: UUID, body: ShareLinkCreate
) -> ShareLinkCreated:
    """A new link to one of the owner's live files or folders; its token is in the answer only."""
    if body.file_id is not None:
        kind, node_id = NodeKind.FILE, body.file_id
    else:
        assert body.folder_id is not None
        kind, node_id = NodeKind.FOLDER, body.folder_id
    node = await session.scalar(files_service.live_node(owner_id, node_id, kind))
    if node is None:
        if kind == NodeKind.FILE:
            raise FileNotFound("There is no such file.")
        raise FolderNotFound("There is no such folder.")
    token = new_secret()
    now = datetime.now(UTC)
    link = ShareLink(
        owner_id=owner_id,
        node_id=node.id,
        token_digest=secret_digest(token),
        password_hash=(
            await passwords.hash_password(body.password) if body.password is not None else None
        ),
        expires_at=now + timedelta(seconds=body.expires_in) if body.expires_in else None,
        max_downloads=body.max_downloads,
    )
    session.add(link)
    await session.flush()
    await session.refresh(link)
    read = _read(link, node, await files_service.node_path(session, node), 0, now)
    return ShareLinkCreated(**read.model_dump(), token=token, url=share_url(settings, token))


async def list_links(
    session: AsyncSession, owner_id: UUID, *, cursor: str | None, limit: int
) -> ShareLinkPage:
    """The owner's links that are not revoked, newest first, expired ones included."""
    query = (
        select(ShareLink, Node)
        .join(Node, Node.id == ShareLink.node_id)
        .where(ShareLink.owner_id == owner_id, ShareLink.revoked_at.is_(None))
    )
    try:
        query = newest_first(query, ShareLink.created_at, ShareLink.id, cursor, limit)
    except CursorError as error:
        raise InvalidCursor("The cursor is not one this server issued.") from error
    rows = [(link, node) for link, node in await session.execute(query)]
    page = rows[:limit]
    parents = await files_service.folder_paths(
        session, {node.parent_id for _, node in page if node.parent_id is not None}
    )
    counts = await downloads_service.counts_by_link(session, [link.id for link, _ in page])
    now = datetime.now(UTC)
    items = [
        _read(
            link,
            node,
            f"{parents[node.parent_id] if node.parent_id else ''}/{node.name}",
            counts.get(link.id, 0),
            now,
        )
        for link, node in page
    ]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1][0]
        next_cursor = encode_cursor(last.created_at, last.id)
    return ShareLinkPage(items=items, next_cursor=next_cursor)


async def revoke_link(session: AsyncSession, owner_id: UUID, link_id: UUID) -> None:
    """Stop the link for good; its download history stays."""
    revoked = await session.scalar(
        update(ShareLink)
        .where(
            ShareLink.id == link_id,
            ShareLink.owner_id == owner_id,
            ShareLink.revoked_at.is_(None),
        )
        .values(revoked_at=func.now())
        .returning(ShareLink.id)
        .execution_options(synchronize_session=False)
    )
    if revoked is None:
        raise ShareNotFound(NO_SUCH_LINK)


# --- the holder's side -----------------------------------------------------------------------


async def open_link(session: AsyncSession, token: str) -> OpenLink:
    """The usable link with this token and its node; ShareNotFound, always alike, otherwise."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise ShareNotFound(NOT_FOUND)
    found = (
        await session.execute(
            select(ShareLink, Node)
            .join(Node, Node.id == ShareLink.node_id)
            .join(User, User.id == ShareLink.owner_id)
            .where(
                ShareLink.token_digest == secret_digest(token),
                _usable(),
                Node.owner_id == ShareLink.owner_id,
                Node.trashed_at.is_(None),
                User.is_active,
            )
        )
    ).one_or_none()
    if found is None:
        raise ShareNotFound(NOT_FOUND)
    link, node = found
    return OpenLink(token=token, link=link, node=node)


def require_access(settings: Settings, opened: OpenLink, passes: Sequence[str | None]) -> None:
    """Nothing for a link without a password; else one of `passes` must be valid for it."""
    if opened.link.password_hash is None:
        return
    if any(link_access.admits(settings, opened.link, value) for value in passes):
        return
    raise ShareLocked(
        "This link is protected by a password: unlock it with POST /s/{token}/unlock first."
    )


async def unlock(settings: Settings, opened: OpenLink, password: str) -> tuple[str, datetime]:
    """A pass for the link if `password` is its password."""
    if opened.link.password_hash is None:
        raise ShareNotLocked("This link has no password: open it directly.")
    if not await passwords.verify_password(opened.link.password_hash, password):
        raise WrongPassword("That is not the link's password.")
    return link_access.grant(settings, opened.link)


def _names(path: str) -> list[str] | None:
    try:
        return existing_path_names(path)
    except ValueError:
        return None


async def _walk(session: AsyncSession, opened: OpenLink, names: Sequence[str]) -> Node | None:
    """The live node at `names` under the shared folder, looked up name by name from it."""
    node = opened.node
    for name in names:
        if node.kind != NodeKind.FOLDER:
            return None
        child = await session.scalar(
            select(Node).where(
                Node.owner_id == opened.link.owner_id,
                Node.parent_id == node.id,
                Node.name_key == name_key(name),
                Node.trashed_at.is_(None),
            )
        )
        if child is None:
            return None
        node = child
    return node


def _file_link_path(opened: OpenLink, path: str | None) -> None:
    if path is not None and opened.node.kind == NodeKind.FILE:
        raise InvalidSharePath("A file link has no paths inside it: leave out `path`.")


async def describe_file(
    session: AsyncSession, opened: OpenLink, path: str | None = None
) -> SharedFileRead:
    """What a file link shows: the file's name, size, type and hash, and the link's limits."""
    _file_link_path(opened, path)
    revision = await files_service.get_current_revision(session, opened.node)
    return SharedFileRead(
        name=opened.node.name,
        size=revision.size if revision else None,
        content_type=revision.content_type if revision else None,
        content_hash=(
            files_service.content_hash(revision.sha256, revision.part_size) if revision else None
        ),
        expires_at=opened.link.expires_at,
        downloads_left=downloads_left(opened.link),
    )


async def list_folder(
    session: AsyncSession,
    opened: OpenLink,
    path: str | None,
    *,
    cursor: str | None,
    limit: int,
) -> SharedFolderRead:
    """A folder link's folder at `path` (relative to it): its folders, then its files."""
    _file_link_path(opened, path)
    names = _names(path or "/")
    folder = await _walk(session, opened, names) if names is not None else None
    if names is None or folder is None or folder.kind != NodeKind.FOLDER:
        raise FolderNotFound(NO_SUCH_FOLDER)
    children = await tree.list_children(
        session, opened.link.owner_id, folder.id, cursor=cursor, limit=limit
    )
    here = "".join(f"/{name}" for name in names)
    items = [
        SharedItem(
            name=child["name"],
            kind=child["kind"],
            path=f"{here}/{child['name']}",
            size=child["size"],
            content_type=child["content_type"],
        )
        for child in children.items
        # A file that never completed an upload has nothing to download yet.
        if child["kind"] == NodeKind.FOLDER or child["status"] == RevisionState.COMPLETE
    ]
    return SharedFolderRead(
        name=opened.node.name,
        path=here or "/",
        items=items,
        next_cursor=children.next_cursor,
        expires_at=opened.link.expires_at,
        downloads_left=downloads_left(opened.link),
    )


async def file_to_download(
    session: AsyncSession, opened: OpenLink, path: str | None
) -> tuple[Node, FileRevision]:
    """The file a download is for: the linked file, or the file at `path` in a folder link."""
    _file_link_path(opened, path)
    if opened.node.kind == NodeKind.FILE:
        file = opened.node
    else:
        if path is None:
            raise InvalidSharePath("A folder link downloads one file at a time: name it in `path`.")
        names = _names(path)
        found = await _walk(session, opened, names) if names else None
        if found is None or found.kind != NodeKind.FILE or found.current_revision_id is None:
            raise FileNotFound(NO_SUCH_FILE)
        file = found
    revision = await files_service.get_current_revision(session, file)
    if revision is None:
        raise FileNotReady("The file has no completed upload yet.")
    return file, revision


async def _consume_download(session: AsyncSession, link_id: UUID) -> None:
    """Use one of the link's downloads, atomically: concurrent requests queue on the row, and
    each re-checks the limit against the count the one before it committed."""
    used = await session.scalar(
        update(ShareLink)
        .where(
            ShareLink.id == link_id,
            _usable(),
            or_(
                ShareLink.max_downloads.is_(None),
                ShareLink.downloads_used < ShareLink.max_downloads,
            ),
        )
        .values(downloads_used=ShareLink.downloads_used + 1)
        .returning(ShareLink.downloads_used)
        .execution_options(synchronize_session=False)
    )
    if used is not None:
        return
    # Revoked or expired since it was opened: the same answer as any other unusable link.
    usable = await session.scalar(select(ShareLink.id).where(ShareLink.id == link_id, _usable()))
    if usable is None:
        raise ShareNotFound(NOT_FOUND)
    raise DownloadLimitReached("This link has reached its download limit.")


async def issue_download(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    opened: OpenLink,
    file: Node,
    revision: FileRevision,
    client_address: str,
) -> DownloadRead:
    """A short-lived URL for the revision, counted against the link's limit and recorded."""
    await _consume_download(session, opened.link.id)
    downloader = Downloader(
        Channel.LINK,
        link_id=opened.link.id,
        ip_hash=downloads_service.ip_hash(settings, client_address),
    )
    return await downloads_service.issue_download(
        session,
        storage,
        downloader,
        file,
        revision,
        expires_in=settings.share_link_url_ttl_seconds,
    )
