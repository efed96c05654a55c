"""The file browser: folders and their files, and the forms that create, rename, move and
trash them, restore them from the trash and empty it. Every form acts through the services
the JSON API uses, so one rule holds for both; file bytes go straight between the browser
and storage."""

import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from uuid import UUID

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.auth.models import User
from dropp.core.config import Settings
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import DroppError
from dropp.core.pages import render
from dropp.downloads.service import issue_download
from dropp.files import revisions, search, service, tree
from dropp.files.dependencies import readable_file
from dropp.files.errors import FileNotReady
from dropp.files.models import NodeKind
from dropp.files.names import existing_path_names, split_folder_path
from dropp.files.schemas import ChildOrder, Direction, FileMove, FolderCreate, FolderMove, NodeName
from dropp.oauth.sign_in import local_path
from dropp.sharing import links, people
from dropp.sharing.link_schemas import ShareLinkCreate
from dropp.sharing.models import Permission
from dropp.storage.dependencies import StorageDep
from dropp.storage.s3 import Storage
from dropp.web.files.views import (
    PAGE_SIZE,
    FolderView,
    Row,
    Sort,
    folder_href,
    folder_view,
    human_size,
    live_folder,
    row,
)
from dropp.web.forms import form_number
from dropp.web.visitors import FormVisitor, PageVisitor, Visitor, message, see_other

router = APIRouter(prefix="/app", include_in_schema=False)

# A page with scripts of its own: only those (by the page's nonce) run, and they call only
# this server.
SCRIPT_POLICY = (
    "default-src 'none'; style-src 'self'; script-src 'nonce-{nonce}'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
BackField = Annotated[str, Form(max_length=2048)]
NameField = Annotated[str, Form(max_length=1024)]
NEW_NAME: TypeAdapter[str] = TypeAdapter(NodeName)


def render_folder(
    person: Visitor,
    view: FolderView,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    return render(
        "web/folder.html",
        status,
        headers={"Content-Security-Policy": SCRIPT_POLICY.format(nonce=nonce)},
        me=person,
        view=view,
        error=error,
        back=view.here,
        # The page follows the changes made after this moment.
        since=datetime.now(UTC).isoformat(),
        nonce=nonce,
    )


async def folder_page(
    session: AsyncSession,
    person: Visitor,
    folder_id: UUID | None,
    cursor: str | None,
    sort: Sort,
) -> HTMLResponse:
    """A folder of the visitor's (None: the top level); another user's answers 404."""
    try:
        folder = await live_folder(session, person.user_id, folder_id) if folder_id else None
        view = await folder_view(session, person.user_id, folder, cursor, sort)
    except DroppError as error:
        return refused_page(error)
    return render_folder(person, view)


@router.get("/folder/{folder_id}", response_class=HTMLResponse)
async def folder(
    folder_id: UUID,
    person: PageVisitor,
    session: SessionDep,
    cursor: str | None = None,
    sort: ChildOrder = ChildOrder.NAME,
    direction: Direction = Direction.ASC,
) -> Response:
    return await folder_page(session, person, folder_id, cursor, Sort(sort, direction))


@router.get("/search", response_class=HTMLResponse)
async def search_page(
    person: PageVisitor,
    session: SessionDep,
    q: Annotated[str, Query(max_length=255)] = "",
    cursor: str | None = None,
) -> Response:
    """What GET /search finds, with each item's folder."""
    results: list[Row] = []
    next_href = None
    if q.strip():
        try:
            page = await search.search(session, person.user_id, q, cursor=cursor, limit=PAGE_SIZE)
        except DroppError as error:
            return refused_page(error)
        results = [row(item) for item in page.items]
        if page.next_cursor:
            next_href = f"/app/search?{urlencode({'q': q, 'cursor': page.next_cursor})}"
    return render("web/search.html", me=person, q=q, rows=results, next_href=next_href)


@router.get("/path")
async def folder_at(
    person: PageVisitor, session: SessionDep, p: Annotated[str, Query(max_length=4096)] = "/"
) -> Response:
    """The folder at a path (the search shows where each item is by its path)."""
    try:
        folder_id = await service.find_folder(session, person.user_id, existing_path_names(p))
    except ValueError:
        return message("Not found", f"There is no folder {p}.", 404)
    except DroppError as error:
        return refused_page(error)
    return see_other(folder_href(folder_id))


@router.get("/get/{file_id}")
async def download(
    file_id: UUID,
    person: PageVisitor,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
) -> Response:
    """The file's current bytes, by a redirect to a short-lived storage URL."""
    return await _download(session, storage, settings, person, file_id, None)


@router.get("/file/{file_id}/revisions/{revision_id}/get")
async def download_revision(
    file_id: UUID,
    revision_id: UUID,
    person: PageVisitor,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
) -> Response:
    """One revision's bytes, the same way."""
    return await _download(session, storage, settings, person, file_id, revision_id)


async def _download(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    person: Visitor,
    file_id: UUID,
    revision_id: UUID | None,
) -> Response:
    try:
        # Also a file someone shared with the visitor, counted as that share's download.
        reader = await readable_file(session, person.user_id, file_id)
        if revision_id is None:
            revision = await service.get_current_revision(session, reader.file)
            if revision is None:
                raise FileNotReady("This file has no completed upload yet.")
        else:
            revision = await revisions.get_revision(session, reader.file, revision_id)
        signed = await issue_download(
            session,
            storage,
            reader.downloader,
            reader.file,
            revision,
            expires_in=settings.presign_ttl_seconds,
        )
    except DroppError as error:
        return refused_page(error)
    return see_other(signed.url)


@router.get("/file/{file_id}/revisions", response_class=HTMLResponse)
async def revisions_page(
    file_id: UUID, person: PageVisitor, session: SessionDep, cursor: str | None = None
) -> Response:
    """A file's versions, newest first, each to download or bring back."""
    return await _revisions_page(session, person, file_id, cursor)


async def _revisions_page(
    session: AsyncSession,
    person: Visitor,
    file_id: UUID,
    cursor: str | None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    try:
        file = await service.get_file(session, person.user_id, file_id)
        page = await revisions.list_revisions(session, file, cursor=cursor, limit=PAGE_SIZE)
        folder_path = await service.node_path(session, file)
    except DroppError as refused:
        return refused_page(refused)
    here = f"/app/file/{file_id}/revisions"
    return render(
        "web/revisions.html",
        status,
        me=person,
        file=file,
        parent=folder_href(file.parent_id),
        path=folder_path,
        revisions=page.revisions,
        sizes={r.revision_id: human_size(r.size) for r in page.revisions},
        next_href=f"{here}?cursor={page.next_cursor}" if page.next_cursor else None,
        error=error,
    )


@router.post("/file/{file_id}/revisions/{revision_id}/restore")
async def restore_revision(
    file_id: UUID,
    revision_id: UUID,
    person: FormVisitor,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
) -> Response:
    """Make this revision's bytes the file's newest, as POST .../restore of the API does."""
    try:
        await revisions.restore_revision(
            session, storage, settings, person.user_id, file_id, revision_id, device="web"
        )
    except DroppError as error:
        await session.rollback()
        page = await _revisions_page(
            session, person, file_id, None, error=error.detail, status=error.status
        )
        page.headers.update(error.response_headers)
        return page
    return see_other(f"/app/file/{file_id}/revisions")


# --- uploads --------------------------------------------------------------------------


@router.get("/upload", response_class=HTMLResponse)
async def upload_page(
    person: PageVisitor,
    session: SessionDep,
    storage: StorageDep,
    folder: UUID | None = None,
    share: UUID | None = None,
    path: Annotated[str, Query(max_length=4096)] = "/",
) -> Response:
    """Files or a whole folder, picked or dropped, sent into `folder` (the top level without
    one), or into `path` of a folder shared with the visitor as editor, by the page's script,
    straight to storage."""
    try:
        if share is not None:
            shared = await people.shared_children(
                session, person.user_id, share, path, cursor=None, limit=1
            )
            if shared.permission != Permission.EDITOR:
                return message(
                    "Not allowed", "This folder is shared with you to view, not to add to.", 403
                )
            folder_name, folder_path = shared.path.rpartition("/")[2], path
            back = f"/app/shared/{share}?{urlencode({'path': path})}"
        else:
            target = await live_folder(session, person.user_id, folder) if folder else None
            folder_name = target.name if target else "Files"
            folder_path = await service.node_path(session, target) if target else "/"
            back = folder_href(target.id if target else None)
    except DroppError as error:
        return refused_page(error)
    nonce = secrets.token_urlsafe(16)
    bucket = urlsplit(storage.post_forms.url)
    storage_origin = f"{bucket.scheme}://{bucket.netloc}"
    policy = (
        f"default-src 'none'; style-src 'self'; script-src 'nonce-{nonce}'; "
        f"connect-src 'self' {storage_origin}; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    )
    return render(
        "web/upload.html",
        headers={"Content-Security-Policy": policy},
        me=person,
        folder_name=folder_name,
        folder_path=folder_path,
        share=share,
        back=back,
        nonce=nonce,
    )


@router.post("/token")
async def access_token(person: FormVisitor, session: SessionDep, request: Request) -> Response:
    """An access token for the upload page's calls to the JSON API, as the signed-in person:
    as short-lived as any, and never a refresh token (the page asks again when it ends)."""
    user = await session.get_one(User, person.user_id)
    signer = request.state.token_issuer.signer
    token = signer.issue(user.id, role=user.role, email_verified=user.email_verified_at is not None)
    return JSONResponse(
        {"access_token": token, "expires_in": int(signer.ttl.total_seconds())},
        headers={"Cache-Control": "no-store"},
    )


# --- forms ------------------------------------------------------------------------------


@router.post("/folders")
async def create_folder(
    person: FormVisitor,
    session: SessionDep,
    name: NameField = "",
    back: BackField = "/",
    parent: Annotated[UUID | None, Form()] = None,
) -> Response:
    async def act() -> None:
        parent_path = ""
        if parent is not None:
            parent_path = await service.node_path(
                session, await live_folder(session, person.user_id, parent)
            )
        # The name alone first: a slash in it is a refused name, not a path to make.
        folder_name = NEW_NAME.validate_python(name)
        body = FolderCreate.model_validate({"path": f"{parent_path}/{folder_name}"})
        await tree.create_folder(session, person.user_id, split_folder_path(body.path))

    return await _acted(session, person, back, act)


@router.post("/{kind}/{node_id}/rename")
async def rename(
    kind: NodeKind,
    node_id: UUID,
    person: FormVisitor,
    session: SessionDep,
    name: NameField = "",
    back: BackField = "/",
) -> Response:
    return await _acted(session, person, back, _mover(session, person, kind, node_id, name=name))


@router.post("/{kind}/{node_id}/move")
async def move(
    kind: NodeKind,
    node_id: UUID,
    person: FormVisitor,
    session: SessionDep,
    parent_path: Annotated[str, Form(max_length=4096)] = "",
    back: BackField = "/",
) -> Response:
    mover = _mover(session, person, kind, node_id, parent_path=parent_path)
    return await _acted(session, person, back, mover)


def _mover(
    session: AsyncSession, person: Visitor, kind: NodeKind, node_id: UUID, **change: str
) -> Callable[[], Awaitable[object]]:
    """A rename or move as PATCH /files/{id} or /folders/{id} makes it, by the same rules."""
    schema = FileMove if kind == NodeKind.FILE else FolderMove
    return lambda: tree.move_node(
        session, person.user_id, node_id, kind, schema.model_validate(change)
    )


@router.post("/{kind}/{node_id}/trash")
async def trash(
    kind: NodeKind,
    node_id: UUID,
    person: FormVisitor,
    session: SessionDep,
    back: BackField = "/",
) -> Response:
    return await _acted(
        session, person, back, lambda: tree.trash_node(session, person.user_id, node_id, kind)
    )


# --- share links ----------------------------------------------------------------------

EXPIRIES = {"": None, "hour": 3600, "day": 86_400, "week": 7 * 86_400, "month": 30 * 86_400}


@router.post("/{kind}/{node_id}/share")
async def share(
    kind: NodeKind,
    node_id: UUID,
    person: FormVisitor,
    session: SessionDep,
    settings: SettingsDep,
    expires: Annotated[str, Form(max_length=16)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    max_downloads: Annotated[str, Form(max_length=16)] = "",
    back: BackField = "/",
) -> Response:
    """A share link to the item, as POST /shares makes it; its URL is shown once, here."""
    target = "file_id" if kind == NodeKind.FILE else "folder_id"
    body = {
        target: str(node_id),
        "expires_in": EXPIRIES.get(expires, -1),  # another value is refused by the schema
        "password": password or None,
        "max_downloads": form_number(max_downloads),
    }
    try:
        made = await links.create_link(
            session, settings, person.user_id, ShareLinkCreate.model_validate(body)
        )
    except (DroppError, ValidationError) as error:
        await session.rollback()
        return await shown_on(session, person, local_path(back), error)
    nonce = secrets.token_urlsafe(16)
    return render(
        "web/share_made.html",
        headers={"Content-Security-Policy": SCRIPT_POLICY.format(nonce=nonce)},
        me=person,
        link=made,
        nonce=nonce,
        back=local_path(back),
    )


# A page with the one script it runs (copying the link), nothing else.


@router.get("/shares", response_class=HTMLResponse)
async def shares_page(
    person: PageVisitor, session: SessionDep, cursor: str | None = None
) -> Response:
    """The visitor's share links with their downloads, each to revoke."""
    return await _shares_page(session, person, cursor)


async def _shares_page(
    session: AsyncSession,
    person: Visitor,
    cursor: str | None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    try:
        page = await links.list_links(session, person.user_id, cursor=cursor, limit=PAGE_SIZE)
    except DroppError as refused:
        return refused_page(refused)
    next_href = f"/app/shares?cursor={page.next_cursor}" if page.next_cursor else None
    return render(
        "web/shares.html", status, me=person, links=page.items, next_href=next_href, error=error
    )


@router.post("/shares/{link_id}/revoke")
async def revoke_share(link_id: UUID, person: FormVisitor, session: SessionDep) -> Response:
    try:
        await links.revoke_link(session, person.user_id, link_id)
    except DroppError as error:
        await session.rollback()
        return await _shares_page(session, person, None, error.detail, error.status)
    return see_other("/app/shares")


# --- the trash --------------------------------------------------------------------------


@router.get("/trash", response_class=HTMLResponse)
async def trash_page(
    person: PageVisitor, session: SessionDep, settings: SettingsDep, cursor: str | None = None
) -> Response:
    try:
        page = await tree.list_trash(
            session,
            person.user_id,
            retention=timedelta(days=settings.trash_retention_days),
            cursor=cursor,
            limit=100,
        )
    except DroppError as error:
        return refused_page(error)
    next_href = f"/app/trash?cursor={page.next_cursor}" if page.next_cursor else None
    return render("web/trash.html", me=person, items=page.items, next_href=next_href)


@router.post("/trash/{kind}/{node_id}/restore")
async def restore(
    kind: NodeKind, node_id: UUID, person: FormVisitor, session: SessionDep
) -> Response:
    # A name taken meanwhile gets "name (2)", as a desktop's trash does.
    def restored() -> Awaitable[object]:
        return tree.restore_node(session, person.user_id, node_id, kind, autorename=True)

    return await _acted(session, person, "/app/trash", restored)


@router.post("/trash/empty")
async def empty_trash(person: FormVisitor, session: SessionDep, storage: StorageDep) -> Response:
    keys = await tree.empty_trash(session, person.user_id)
    await service.forget_stored(session, storage, keys)
    return see_other("/app/trash")


# --- answers ----------------------------------------------------------------------------


async def _acted(
    session: AsyncSession,
    person: Visitor,
    back: str,
    act: Callable[[], Awaitable[object]],
) -> Response:
    """Do what a form asks, then back to the page it came from; what refuses it is shown
    on that page, with nothing changed."""
    back = local_path(back)
    try:
        await act()
    except (DroppError, ValidationError) as error:
        await session.rollback()
        return await shown_on(session, person, back, error)
    return see_other(back)


async def shown_on(
    session: AsyncSession,
    person: Visitor,
    back: str,
    error: DroppError | ValidationError,
) -> HTMLResponse:
    headers: dict[str, str] = {}
    if isinstance(error, ValidationError):
        reason, status = "; ".join(_reason(e) for e in error.errors()), 422
    else:
        reason, status, headers = error.detail, error.status, error.response_headers
    folder_id = _folder_of(back)
    try:
        if urlsplit(back).path != "/" and folder_id is None:
            raise LookupError(back)  # not a folder's page: the reason alone
        folder = await live_folder(session, person.user_id, folder_id) if folder_id else None
        page = render_folder(
            person,
            await folder_view(session, person.user_id, folder, None, _sort_of(back)),
            error=reason,
            status=status,
        )
    except (DroppError, LookupError):
        page = message("Not done", reason, status)
    page.headers.update(headers)
    return page


def _reason(error: Any) -> str:
    text = str(error.get("msg", "invalid"))
    return text.removeprefix("Value error, ")


def _folder_of(path: str) -> UUID | None:
    prefix = "/app/folder/"
    if not path.startswith(prefix):
        return None
    try:
        return UUID(path.removeprefix(prefix).partition("?")[0])
    except ValueError:
        return None


def _sort_of(path: str) -> Sort:
    """The order a folder's page was in, to show it again in that order."""
    asked = dict(parse_qsl(urlsplit(path).query))
    try:
        return Sort(
            ChildOrder(asked.get("sort", ChildOrder.NAME)),
            Direction(asked.get("direction", Direction.ASC)),
        )
    except ValueError:
        return Sort()


def refused_page(error: DroppError) -> HTMLResponse:
    page = message(
        "Not found" if error.status == 404 else "Not available", error.detail, error.status
    )
    page.headers.update(error.response_headers)
    return page
