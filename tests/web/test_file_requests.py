"""The web app's file request forms: closing one needs the session's form token and the
owner; opening one is refused, in words and with nothing made, where the API refuses it."""

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.core.config import Settings
from dropp.oauth.web_sessions import csrf_token
from dropp.web.file_requests.router import default_folder
from tests.file_requests.flow import folder_items, open_request
from tests.helpers import register_account
from tests.web.test_forms import session, signed_in_cookie


async def test_closing_a_request_needs_the_form_token_and_the_owner(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    ada = await register_account(client, "ada@example.com", engine=engine)
    await register_account(client, "bob@example.com", engine=engine)
    opened = await open_request(client, ada, title="Receipts")
    close = f"/app/requests/{opened['id']}/close"
    cookie = await signed_in_cookie(client, "ada@example.com")
    bobs_cookie = await signed_in_cookie(client, "bob@example.com")

    for token in ("", "0" * 64, csrf_token(settings, "web", bobs_cookie)):
        refused = await client.post(close, data={"csrf": token}, headers=session(cookie))
        assert refused.status_code == 403, refused.text
    not_his = await client.post(
        close, data={"csrf": csrf_token(settings, "web", bobs_cookie)}, headers=session(bobs_cookie)
    )
    assert not_his.status_code == 404, not_his.text
    assert 'role="alert"' in not_his.text
    assert (await client.get(f"/r/{opened['token']}")).status_code == 200

    closed = await client.post(
        close, data={"csrf": csrf_token(settings, "web", cookie)}, headers=session(cookie)
    )
    assert closed.status_code == 303
    assert closed.headers["location"] == "/app/requests"
    assert (await client.get(f"/r/{opened['token']}")).status_code == 404


@pytest.mark.parametrize(
    ("role", "verified", "why"),
    [
        ("guest", True, "role may not upload"),
        (None, False, "Verify your email address"),
    ],
)
async def test_an_owner_who_may_not_take_files_is_refused_on_the_page(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    settings: Settings,
    role: str | None,
    verified: bool,
    why: str,
) -> None:
    ada = await register_account(
        client, "ada@example.com", engine=engine if verified else None, role=role
    )
    cookie = await signed_in_cookie(client, "ada@example.com")

    refused = await client.post(
        "/app/requests",
        data={"csrf": csrf_token(settings, "web", cookie), "title": "Receipts"},
        headers=session(cookie),
    )
    assert refused.status_code == 403, refused.text
    assert why in refused.text
    assert 'value="Receipts"' in refused.text
    listing = await client.get("/file-requests", headers=ada.headers)
    assert listing.json()["file_requests"] == []
    assert await folder_items(client, ada, "/") == {}


async def test_a_size_limit_above_the_accounts_is_refused_in_megabytes(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await register_account(client, "ada@example.com", engine=engine)
    cookie = await signed_in_cookie(client, "ada@example.com")

    refused = await client.post(
        "/app/requests",
        data={
            "csrf": csrf_token(settings, "web", cookie),
            "title": "Videos",
            "max_mb": "999999",
        },
        headers=session(cookie),
    )
    assert refused.status_code == 422, refused.text
    assert "Largest file: at most" in refused.text
    assert "max_file_bytes" not in refused.text


def test_a_title_becomes_a_folder_name_any_desktop_can_hold() -> None:
    assert default_folder("  Receipts for the trip ") == "/File requests/Receipts for the trip"
    assert default_folder('Q1/Q2: "invoices"?') == "/File requests/Q1-Q2 invoices"
    assert default_folder("Notes...") == "/File requests/Notes"
    assert default_folder("   ") == "/File requests"
