"""File requests in the web app: the open ones with their uses, a form that opens one and
shows its link once, and closing one; through the services of /file-requests."""

import re
import secrets
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.auth.models import User
from dropp.auth.tokens import AccessClaims
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import DroppError
from dropp.core.pages import render, size_text
from dropp.file_requests import service
from dropp.file_requests.errors import FileSizeLimitTooHigh
from dropp.file_requests.schemas import FileRequestCreate
from dropp.files.names import MAX_NAME_BYTES
from dropp.uploads.errors import EmailNotVerified
from dropp.web.files.router import EXPIRIES, SCRIPT_POLICY, refused_page
from dropp.web.files.views import PAGE_SIZE, folder_href
from dropp.web.forms import form_number
from dropp.web.visitors import FormVisitor, PageVisitor, Visitor, see_other

router = APIRouter(prefix="/app", include_in_schema=False)

HERE = "/app/requests"
# Where a request given no folder gathers its files: a folder of its own, named after it.
DEFAULT_PARENT = "/File requests"
# A title may hold what a folder name may not: a slash, or what Windows refuses.
SLASHES = re.compile(r"[/\\]+")
UNFIT_IN_NAME = re.compile(r'[:*?"<>|]+')
MB = 1_000_000  # the page's sizes are in units of 1,000, as size_text writes them
# The form's fields by the schema's names, so a refusal says which one it is about.
LABELS = {
    "title": "Title",
    "folder_path": "Folder",
    "expires_in": "Open for",
    "max_uploads": "Uploads allowed",
    "max_file_bytes": "Largest file",
}

NumberField = Annotated[str, Form(max_length=16)]


@dataclass(frozen=True)
class Draft:
    """What the form holds: a new request's defaults, or what was sent when it was refused,
    so nothing has to be typed again."""

    title: str = ""
    folder: str = ""
    expires: str = "week"
    max_uploads: str = ""
    max_mb: str = ""


@router.get("/requests", response_class=HTMLResponse)
async def requests_page(
    person: PageVisitor, session: SessionDep, cursor: str | None = None
) -> Response:
    """Your file requests that are not closed, newest first, and a form to open one."""
    return await _requests_page(session, person, cursor)


@router.post("/requests")
async def open_request(
    person: FormVisitor,
    session: SessionDep,
    settings: SettingsDep,
    # Longer than a title may be, so the schema refuses it in words.
    title: Annotated[str, Form(max_length=1000)] = "",
    folder: Annotated[str, Form(max_length=4096)] = "",
    expires: Annotated[str, Form(max_length=16)] = "week",
    max_uploads: NumberField = "",
    max_mb: NumberField = "",
) -> Response:
    """A file request, as POST /file-requests opens it; its link is shown once, here."""
    draft = Draft(title, folder, expires, max_uploads, max_mb)
    body = {
        "title": title,
        "folder_path": folder.strip() or default_folder(title),
        "expires_in": EXPIRIES.get(expires, -1),  # another value is refused by the schema
        "max_uploads": form_number(max_uploads),
        "max_file_bytes": form_number(max_mb, MB),
    }
    try:
        # The owner as the database has them now: a page has no access token to read.
        user = await session.get_one(User, person.user_id)
        owner = AccessClaims(
            user.id, role=user.role, email_verified=user.email_verified_at is not None
        )
        made = await service.create_request(
            session, settings, owner, FileRequestCreate.model_validate(body)
        )
    except (DroppError, ValidationError) as error:
        await session.rollback()
        # A folder the person did not type is named for what it came from.
        labels = LABELS if folder.strip() else {**LABELS, "folder_path": "Folder (from the title)"}
        return await _requests_page(
            session, person, None, draft=draft, refused=_refusal(error, labels)
        )
    nonce = secrets.token_urlsafe(16)
    return render(
        "web/request_made.html",
        headers={"Content-Security-Policy": SCRIPT_POLICY.format(nonce=nonce)},
        me=person,
        made=made,
        folder=folder_href(made.folder_id),
        largest=size_text(made.max_file_bytes) if made.max_file_bytes else None,
        nonce=nonce,
    )


@router.post("/requests/{request_id}/close")
async def close_file_request(
    request_id: UUID, person: FormVisitor, session: SessionDep
) -> Response:
    """Close the request: its link answers 404 from now on; the files it brought stay."""
    try:
        await service.close_request(session, person.user_id, request_id)
    except DroppError as error:
        await session.rollback()
        return await _requests_page(session, person, None, refused=_refusal(error))
    return see_other(HERE)


def default_folder(title: str) -> str:
    """The folder a request named `title` fills when the form names none."""
    name = " ".join(UNFIT_IN_NAME.sub("", SLASHES.sub("-", title)).split())
    name = name.encode()[:MAX_NAME_BYTES].decode(errors="ignore").rstrip(" .")
    return f"{DEFAULT_PARENT}/{name}" if name else DEFAULT_PARENT


async def _requests_page(
    session: AsyncSession,
    person: Visitor,
    cursor: str | None,
    *,
    draft: Draft | None = None,
    refused: tuple[str, int] | None = None,
) -> HTMLResponse:
    try:
        page = await service.list_requests(session, person.user_id, cursor=cursor, limit=PAGE_SIZE)
    except DroppError as error:
        return refused_page(error)
    requests = page.file_requests
    reason, status = refused or (None, 200)
    return render(
        "web/requests.html",
        status,
        me=person,
        requests=requests,
        folders={r.id: folder_href(r.folder_id) for r in requests},
        largest={r.id: size_text(r.max_file_bytes) for r in requests if r.max_file_bytes},
        next_href=f"{HERE}?cursor={page.next_cursor}" if page.next_cursor else None,
        error=reason,
        draft=draft or Draft(),
    )


def _refusal(
    error: DroppError | ValidationError, labels: dict[str, str] = LABELS
) -> tuple[str, int]:
    """What refused the form, in the page's words, and its status. Not its headers: those
    of a link's refusals keep the link's secret, and this page has none."""
    if isinstance(error, ValidationError):
        return "; ".join(_said(e, labels) for e in error.errors()), 422
    # The service speaks to API clients in two of its refusals: of tokens and field names.
    if isinstance(error, EmailNotVerified):
        detail = (
            "Verify your email address before accepting files through a link: open the link "
            "in the email Dropp sent you, or have a new one sent from your Account page."
        )
    elif isinstance(error, FileSizeLimitTooHigh):
        detail = (
            f"Largest file: at most {size_text(error.extra['max_bytes'])}, the largest file "
            "your account may upload in one piece."
        )
    else:
        detail = error.detail
    return detail, error.status


def _said(error: ErrorDetails, labels: dict[str, str]) -> str:
    text = error["msg"].removeprefix("Value error, ")
    field = labels.get(str(error["loc"][0])) if error["loc"] else None
    return f"{field}: {text}" if field else text
