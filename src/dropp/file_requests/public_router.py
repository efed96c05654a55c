"""The link of a file request, for anyone holding it: no account, no view of the folder."""

import secrets
from urllib.parse import urlsplit
from uuid import UUID

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse

from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import responses
from dropp.core.pages import SECRET_LINK_HEADERS, prefers_html, render, size_text
from dropp.core.rate_limit import RateLimited, rate_limited
from dropp.core.schemas import LinkToken
from dropp.file_requests import intake
from dropp.file_requests.errors import (
    FileRequestFull,
    FileRequestNoSpace,
    FileRequestNotFound,
    NameBusy,
)
from dropp.file_requests.schemas import (
    DropCompleteRead,
    DropCreate,
    DropRead,
    FileRequestPublicRead,
)
from dropp.roles.errors import FileTypeNotAllowed
from dropp.storage.dependencies import StorageDep
from dropp.storage.s3 import Storage
from dropp.uploads.errors import (
    FileTooLarge,
    StorageVersioningDisabled,
    UploadAlreadyComplete,
    UploadChecksumMismatch,
    UploadExpired,
    UploadIncomplete,
    UploadNotFound,
    UploadSizeMismatch,
)
from dropp.uploads.pending import TooManyPendingUploads

router = APIRouter(prefix="/r", tags=["file requests"], responses=responses(FileRequestNotFound))


def _private(response: Response) -> None:
    response.headers.update(SECRET_LINK_HEADERS)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _page(view: FileRequestPublicRead, storage: Storage) -> HTMLResponse:
    """The upload page: a file picker whose script starts each upload here, sends the bytes
    straight to storage, and completes it; and the same steps spelled out for scripts."""
    nonce = secrets.token_urlsafe(16)
    policy = (
        f"default-src 'none'; style-src 'self'; script-src 'nonce-{nonce}'; "
        f"connect-src 'self' {_origin(storage.post_forms.url)}; form-action 'none'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    deadline = view.deadline.strftime("%Y-%m-%d %H:%M UTC") if view.deadline else None
    return render(
        "file_request.html",
        headers={**SECRET_LINK_HEADERS, "Content-Security-Policy": policy},
        title=view.title,
        deadline=deadline,
        max_size=size_text(view.max_file_bytes),
        uploads_left=view.uploads_left,
        nonce=nonce,
    )


@router.get(
    "/{token}",
    response_model=FileRequestPublicRead,
    responses={200: {"content": {"text/html": {}}, "description": "The request, or its page."}},
)
async def view_link(
    token: LinkToken,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
) -> Response:
    """What the link asks for and what it still takes. A browser (Accept preferring HTML)
    gets an upload page instead. Never the folder, its files, or its owner."""
    html = prefers_html(request.headers.get("accept"))
    try:
        found = await intake.find_request(session, settings, token)
    except FileRequestNotFound:
        if not html:
            raise
        return render(
            "file_request_gone.html", status.HTTP_404_NOT_FOUND, headers=SECRET_LINK_HEADERS
        )
    view = intake.public_view(settings, found)
    if html:
        return _page(view, storage)
    return JSONResponse(view.model_dump(mode="json"), headers=SECRET_LINK_HEADERS)


@router.post(
    "/{token}/uploads",
    status_code=status.HTTP_201_CREATED,
    dependencies=[rate_limited("file-request-upload")],
    responses=responses(
        FileTooLarge,
        FileTypeNotAllowed,
        FileRequestNoSpace,
        FileRequestFull,
        NameBusy,
        TooManyPendingUploads,
        RateLimited,
    ),
)
async def start_upload_through_link(
    token: LinkToken,
    body: DropCreate,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    response: Response,
) -> DropRead:
    """Start an upload into the request's folder: POST the file to `upload.url` with
    `upload.fields`, then complete it. It always becomes a new file: a name already taken
    there gets a number ("report (2).pdf"), and nothing there is replaced or shown."""
    _private(response)
    return await intake.start_drop(session, storage, settings, token, body)


@router.post(
    "/{token}/uploads/{upload_id}/complete",
    responses=responses(
        UploadNotFound,
        UploadIncomplete,
        UploadSizeMismatch,
        UploadChecksumMismatch,
        UploadExpired,
        StorageVersioningDisabled,
    ),
)
async def complete_upload_through_link(
    token: LinkToken,
    upload_id: UUID,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    response: Response,
) -> DropCompleteRead:
    """Finish an upload once its bytes are in storage; storage's size is the one that counts.
    An upload started before the deadline may be completed after it."""
    _private(response)
    return await intake.complete_drop(session, storage, settings, token, upload_id)


@router.delete(
    "/{token}/uploads/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(UploadNotFound, UploadAlreadyComplete),
)
async def cancel_upload_through_link(
    token: LinkToken,
    upload_id: UUID,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
) -> Response:
    """Cancel an upload that is not complete: storage drops its bytes, the file it would have
    become goes, and the request gets the use back."""
    cleanup = await intake.cancel_drop(session, settings, token, upload_id)
    # Rows go first: a crash between the two leaves unreferenced bytes for the sweeper, never
    # rows that point at missing bytes.
    await session.commit()
    for key, storage_upload_id in cleanup.multipart:
        await storage.abort_multipart_upload(key, storage_upload_id)
    for key in cleanup.keys:
        await storage.delete(key)
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=SECRET_LINK_HEADERS)
