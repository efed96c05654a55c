"""What anyone holding a share link's token sees: no account, no bearer token.

Each route answers JSON, or small pages for a browser (an Accept that prefers text/html).
Every answer, errors included, is kept out of caches, search indexes and Referer headers.

The unlock form carries no CSRF token: a site that could forge its post would need the
link's token and password, and could then open the link itself.
"""

from collections.abc import Callable, Coroutine
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Cookie, Header, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dropp.auth.tokens import secret_digest
from dropp.core.config import Settings
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import PROBLEM_MEDIA_TYPE, DroppError, error_response, responses
from dropp.core.openapi import PROBLEM_REF
from dropp.core.pages import SECRET_LINK_HEADERS, prefers_html, render, size_text
from dropp.core.rate_limit import RateLimited, RateLimiter, client_address
from dropp.core.schemas import LinkToken
from dropp.files.errors import FileNotFound, FileNotReady, FolderNotFound, InvalidCursor
from dropp.files.models import NodeKind
from dropp.files.schemas import DownloadRead
from dropp.sharing import links
from dropp.sharing.link_access import ACCESS_COOKIE, ACCESS_HEADER
from dropp.sharing.link_errors import (
    DownloadLimitReached,
    InvalidSharePath,
    ShareLocked,
    ShareNotFound,
    ShareNotLocked,
    WrongPassword,
)
from dropp.sharing.link_schemas import (
    ShareAccess,
    SharedFileRead,
    SharedFolderRead,
    ShareUnlock,
)
from dropp.storage.dependencies import StorageDep

UNLOCK_GROUP = "share-unlock"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

PUBLIC_HEADERS = {
    **SECRET_LINK_HEADERS,
    "X-Content-Type-Options": "nosniff",
    "Vary": "Accept",
}


def _page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return render(template, status_code, headers=PUBLIC_HEADERS, **context)


def _locked_page(
    settings: Settings,
    token: str,
    *,
    path: str | None = None,
    error: str | None = None,
    status_code: int = status.HTTP_401_UNAUTHORIZED,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    page = _page(
        "share_locked.html",
        status_code,
        unlock_action=f"{links.share_path(settings, token)}/unlock",
        path=path,
        error=error,
    )
    page.headers.update(headers or {})
    return page


def _error_page(request: Request, error: DroppError) -> HTMLResponse:
    settings: Settings = request.state.settings
    token = request.path_params.get("token")
    if isinstance(error, ShareLocked) and isinstance(token, str):
        return _locked_page(settings, token)
    page = _page(
        "message.html",
        error.status,
        title=HTTPStatus(error.status).phrase,
        message=error.detail,
        error=True,
    )
    page.headers.update(error.response_headers)
    return page


class PublicShareRoute(APIRoute):
    """Errors as pages for a browser, and the public headers on every answer."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            # The route's session has already rolled back when an error arrives here.
            try:
                response = await handler(request)
            except DroppError as error:
                response = (
                    _error_page(request, error)
                    if prefers_html(request.headers.get("accept"))
                    else error_response(error)
                )
            except RequestValidationError as error:
                response = await request.app.exception_handlers[RequestValidationError](
                    request, error
                )
            response.headers.update(PUBLIC_HEADERS)
            return response

        return answer


router = APIRouter(tags=["share links"], route_class=PublicShareRoute)

AccessHeader = Annotated[
    str | None,
    Header(
        alias=ACCESS_HEADER,
        description="For a password-protected link: the `access` POST /s/{token}/unlock gave.",
    ),
]
AccessCookie = Annotated[str | None, Cookie(alias=ACCESS_COOKIE, include_in_schema=False)]
SharePath = Annotated[
    str | None,
    Query(max_length=4096, description="Folder links: a path inside the shared folder."),
]


# --- pages -------------------------------------------------------------------------------------


def _when(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else None


def _file_page(settings: Settings, token: str, shared: SharedFileRead) -> HTMLResponse:
    return _page(
        "share_file.html",
        name=shared.name,
        details=" · ".join(
            part
            for part in (
                size_text(shared.size) if shared.size is not None else "",
                shared.content_type or "",
            )
            if part
        ),
        ready=shared.size is not None,
        download_href=f"{links.share_path(settings, token)}/download",
        downloads_left=shared.downloads_left,
        expires_at=_when(shared.expires_at),
    )


def _folder_page(settings: Settings, token: str, shared: SharedFolderRead) -> HTMLResponse:
    base = links.share_path(settings, token)

    def view(path: str, **more: str) -> str:
        return f"{base}?{urlencode({'path': path, **more})}" if path != "/" or more else base

    names = [name for name in shared.path.split("/") if name]
    crumbs = [{"name": shared.name, "href": view("/")}]
    crumbs += [
        {"name": name, "href": view("/" + "/".join(names[: depth + 1]))}
        for depth, name in enumerate(names)
    ]
    spent = shared.downloads_left == 0
    items = [
        {
            "name": item.name,
            "folder": item.kind == NodeKind.FOLDER,
            "href": (
                view(item.path)
                if item.kind == NodeKind.FOLDER
                else None
                if spent
                else f"{base}/download?{urlencode({'path': item.path})}"
            ),
            "size": size_text(item.size) if item.size is not None else "",
        }
        for item in shared.items
    ]
    return _page(
        "share_folder.html",
        name=shared.name,
        crumbs=crumbs,
        items=items,
        next_href=view(shared.path, cursor=shared.next_cursor) if shared.next_cursor else None,
        downloads_left=shared.downloads_left,
        expires_at=_when(shared.expires_at),
    )


# --- routes ------------------------------------------------------------------------------------


@router.get(
    "/s/{token}",
    response_model=SharedFileRead | SharedFolderRead,
    responses={
        200: {
            "description": "JSON, or with an Accept preferring text/html, a page.",
            "content": {"text/html": {}},
        },
        **responses(ShareNotFound, ShareLocked, FolderNotFound, InvalidSharePath, InvalidCursor),
    },
)
async def open_share(
    token: LinkToken,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    access: AccessHeader = None,
    access_cookie: AccessCookie = None,
    path: SharePath = None,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response | SharedFileRead | SharedFolderRead:
    """What a link shares: a file's name, size and type, or a folder's contents at `path`
    (relative to the shared folder; folders first, then files, paged with `cursor`)."""
    html = prefers_html(request.headers.get("accept"))
    opened = await links.open_link(session, token)
    try:
        links.require_access(settings, opened, [access, access_cookie])
    except ShareLocked:
        if html:
            return _locked_page(settings, token, path=path)
        raise
    if opened.node.kind == NodeKind.FILE:
        shared_file = await links.describe_file(session, opened, path)
        return _file_page(settings, token, shared_file) if html else shared_file
    folder = await links.list_folder(session, opened, path, cursor=cursor, limit=limit)
    return _folder_page(settings, token, folder) if html else folder


@router.get(
    "/s/{token}/download",
    response_model=DownloadRead,
    responses={
        302: {"description": "The signed storage URL in `Location` (unless `redirect=false`)."},
        **responses(
            ShareNotFound,
            ShareLocked,
            FileNotFound,
            InvalidSharePath,
            FileNotReady,
            DownloadLimitReached,
        ),
    },
)
async def download_share(
    token: LinkToken,
    request: Request,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    access: AccessHeader = None,
    access_cookie: AccessCookie = None,
    path: SharePath = None,
    redirect: bool = True,
) -> Response | DownloadRead:
    """Download the linked file, or with `path` a file in the linked folder: 302 to a storage
    URL valid SHARE_LINK_URL_TTL_SECONDS, as an attachment. Each call uses one of the link's
    downloads, and is recorded. `redirect=false` answers `{url, expires_at}` instead."""
    opened = await links.open_link(session, token)
    links.require_access(settings, opened, [access, access_cookie])
    file, revision = await links.file_to_download(session, opened, path)
    signed = await links.issue_download(
        session, storage, settings, opened, file, revision, client_address(request)
    )
    if redirect:
        return RedirectResponse(signed.url, status_code=status.HTTP_302_FOUND)
    return signed


def _is_form(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    return media_type in FORM_TYPES


class ShareUnlockForm(BaseModel):
    """What the locked page's form posts. Unknown fields are refused (422), as the JSON
    body's are, rather than dropped unseen."""

    model_config = ConfigDict(extra="forbid")

    # Not refused when empty: the locked page comes back asking for it.
    password: str
    path: str = Field("", description="The folder view to go back to.")


def _refused(error: ValidationError) -> RequestValidationError:
    return RequestValidationError(
        [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
    )


async def _json_password(request: Request) -> str:
    # No body reads as an empty object, so it is answered as a missing field.
    raw = await request.body()
    try:
        return ShareUnlock.model_validate_json(raw or b"{}").password
    except ValidationError as error:
        raise _refused(error) from error


async def _form_fields(request: Request) -> ShareUnlockForm:
    fields = await request.form(max_files=0)
    try:
        return ShareUnlockForm.model_validate(dict(fields))
    except ValidationError as error:
        raise _refused(error) from error


UNLOCK_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": ShareUnlock.model_json_schema()},
        "application/x-www-form-urlencoded": {"schema": ShareUnlockForm.model_json_schema()},
    },
}


def _page_or_problem(documented: dict[int | str, dict[str, Any]]) -> dict[int | str, Any]:
    """The page's form gets a page (the locked page again, or one saying why not), a JSON
    client a problem: both are documented."""
    return {
        status_code: {
            "description": entry["description"],
            "content": {
                PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF},
                "text/html": {"schema": {"type": "string"}},
            },
        }
        for status_code, entry in documented.items()
    }


@router.post(
    "/s/{token}/unlock",
    response_model=ShareAccess,
    openapi_extra={"requestBody": UNLOCK_BODY},
    responses={
        303: {"description": "From the page's form: back to the link, now open."},
        **_page_or_problem(responses(ShareNotFound, WrongPassword, ShareNotLocked, RateLimited)),
    },
)
async def unlock_share(
    token: LinkToken, request: Request, session: SessionDep, settings: SettingsDep
) -> Response | ShareAccess:
    """Enter a link's password: `{access, expires_at}`, and the same pass as an HttpOnly
    cookie for the link's path, valid SHARE_UNLOCK_TTL_SECONDS. Send `access` back in the
    `X-Share-Access` header. Counted per address, and per link from each address; over
    either limit, 429."""
    limiter: RateLimiter = request.state.rate_limiter
    form = _is_form(request)
    back_to: str | None = None
    try:
        # Counted before anything is read, so no request escapes the count: per address, and
        # per link and address together. Not per link alone, or anyone holding the link could
        # keep it refused for everyone, the right password included; the minimum password
        # length (MIN_LINK_PASSWORD) is what makes guessing from many addresses hopeless. The
        # link is counted under its token's digest: the counters never hold a usable token.
        address = client_address(request)
        await limiter.check(UNLOCK_GROUP, address, f"{secret_digest(token).hex()} {address}")
        if form:
            fields = await _form_fields(request)
            password, path = fields.password, fields.path
            back_to = path if path and len(path) <= 4096 else None
        else:
            password = await _json_password(request)
        opened = await links.open_link(session, token)
        if not password:
            raise WrongPassword("Enter the link's password.")
        access, expires_at = await links.unlock(settings, opened, password)
    except (RateLimited, WrongPassword) as error:
        if not form:
            raise
        return _locked_page(
            settings,
            token,
            path=back_to,
            error=error.detail,
            status_code=error.status,
            headers=error.response_headers,
        )
    response: Response
    if form:
        location = links.share_path(settings, token)
        if back_to is not None:
            location += f"?{urlencode({'path': back_to})}"
        response = RedirectResponse(location, status_code=status.HTTP_303_SEE_OTHER)
    else:
        answer = ShareAccess(access=access, expires_at=expires_at)
        response = JSONResponse(answer.model_dump(mode="json"))
    response.set_cookie(
        ACCESS_COOKIE,
        access,
        max_age=max(1, int((expires_at - datetime.now(expires_at.tzinfo)).total_seconds())),
        path=links.share_path(settings, token),
        httponly=True,
        samesite="lax",
        secure=settings.public_url.startswith("https://"),
    )
    return response
