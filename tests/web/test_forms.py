"""The web app's forms act only with the form token of the session that sends them, and
never for someone signed out; what they do goes through the JSON API's rules."""

from uuid import uuid4

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.core.config import Settings
from dropp.oauth.web_sessions import csrf_token
from tests.helpers import PASSWORD, register_account, upload_file
from tests.sharing.people_helpers import granted


async def signed_in_cookie(client: httpx.AsyncClient, email: str) -> str:
    answer = await client.post("/login/", data={"email": email, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    client.cookies.clear()  # sent by hand below, so each request says whose it is
    return answer.cookies["dropp_session"]


def session(cookie: str) -> dict[str, str]:
    return {"Cookie": f"dropp_session={cookie}"}


async def folder_names(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    listing = await client.get("/folders", params={"path": "/"}, headers=headers)
    return [item["name"] for item in listing.json()["items"]]


async def test_a_form_needs_its_sessions_token(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    ada = await register_account(client, "ada@example.com", engine=engine)
    bob = await register_account(client, "bob@example.com", engine=engine)
    cookie = await signed_in_cookie(client, "ada@example.com")
    bobs_cookie = await signed_in_cookie(client, "bob@example.com")

    for token in ("", "0" * 64, csrf_token(settings, "web", bobs_cookie)):
        refused = await client.post(
            "/app/folders",
            data={"csrf": token, "name": "Taxes"},
            headers=session(cookie),
        )
        assert refused.status_code == 403, refused.text
    signed_out = await client.post(
        "/app/folders", data={"csrf": csrf_token(settings, "web", cookie), "name": "Taxes"}
    )
    assert signed_out.status_code == 401
    assert await folder_names(client, ada.headers) == []

    made = await client.post(
        "/app/folders",
        data={"csrf": csrf_token(settings, "web", cookie), "name": "Taxes"},
        headers=session(cookie),
    )
    assert made.status_code == 303
    assert made.headers["location"] == "/"
    assert await folder_names(client, ada.headers) == ["Taxes"]
    assert await folder_names(client, bob.headers) == []


async def test_a_name_the_api_refuses_is_refused_on_the_page(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    ada = await register_account(client, "ada@example.com", engine=engine)
    cookie = await signed_in_cookie(client, "ada@example.com")
    token = csrf_token(settings, "web", cookie)

    for name, why in [("CON", "Windows"), ("a/b", "/"), ("x" * 300, "255")]:
        refused = await client.post(
            "/app/folders", data={"csrf": token, "name": name}, headers=session(cookie)
        )
        assert refused.status_code == 422, (name, refused.text)
        assert 'role="alert"' in refused.text
        assert why in refused.text, refused.text
    assert await folder_names(client, ada.headers) == []


async def test_the_upload_pages_token_needs_the_form_token_and_acts_as_the_person(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    ada = await register_account(client, "ada@example.com", engine=engine)
    cookie = await signed_in_cookie(client, "ada@example.com")

    refused = await client.post("/app/token", data={"csrf": "0" * 64}, headers=session(cookie))
    assert refused.status_code == 403
    minted = await client.post(
        "/app/token", data={"csrf": csrf_token(settings, "web", cookie)}, headers=session(cookie)
    )
    assert minted.status_code == 200, minted.text
    assert minted.headers["cache-control"] == "no-store"
    assert "refresh_token" not in minted.json()
    me = await client.get(
        "/me", headers={"Authorization": f"Bearer {minted.json()['access_token']}"}
    )
    assert me.json()["id"] == ada.user_id


async def test_the_sign_up_and_reset_pages_tell_nothing_of_which_addresses_have_accounts(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await register_account(client, "taken@example.com", engine=engine)
    form = {"password": PASSWORD, "again": PASSWORD}

    taken = await client.post("/signup/", data={"email": "taken@example.com", **form})
    free = await client.post("/signup/", data={"email": "free@example.com", **form})
    assert taken.status_code == free.status_code == 200
    assert taken.text.replace("taken@", "free@") == free.text
    for address in ("taken@example.com", "nobody@example.com"):
        asked = await client.post("/forgot/", data={"email": address})
        assert asked.status_code == 200
        assert "If an account signs in with this address" in asked.text
    forged = await client.post(
        "/signup/",
        data={"email": "x@example.com", **form},
        headers={"Origin": "https://elsewhere.example"},
    )
    assert forged.status_code == 403


async def test_a_download_limit_of_other_digits_is_refused_in_words(
    client: httpx.AsyncClient, web: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    """Digits to str.isdigit that int() refuses ("²", "٣"), and other bad limits: each is a
    422 on the page, and no link is made."""
    ada = await register_account(client, "ada@example.com", engine=engine)
    done = await upload_file(client, web, ada, "notes.txt", b"n")
    cookie = await signed_in_cookie(client, "ada@example.com")

    for limit in ("²", "٣", "-1", "1e3"):
        refused = await client.post(
            f"/app/file/{done['file_id']}/share",
            data={"csrf": csrf_token(settings, "web", cookie), "max_downloads": limit},
            headers=session(cookie),
        )
        assert refused.status_code == 422, (limit, refused.text)
        assert "Download limit" in refused.text or "max_downloads" in refused.text
    listed = await client.get("/shares", headers=ada.headers)
    assert listed.json()["items"] == []


async def test_the_upload_page_of_a_share_is_only_for_its_editors(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Someone else's share, a share's folder that is not there, and a bad path each answer
    404, as if there were no such share; an editor's page names the folder."""
    ada = await register_account(client, "ada@example.com", engine=engine)
    await register_account(client, "bob@example.com", engine=engine)
    await register_account(client, "eve@example.com", engine=engine)
    folder = await client.post("/folders", json={"path": "/Team/Drafts"}, headers=ada.headers)
    grant = await granted(
        client,
        ada,
        permission="editor",
        folder_id=folder.json()["folder_id"],
        email="bob@example.com",
    )
    await client.post("/folders", json={"path": "/Team/Drafts/Inner"}, headers=ada.headers)
    bobs = session(await signed_in_cookie(client, "bob@example.com"))
    eves = session(await signed_in_cookie(client, "eve@example.com"))

    page = f"/app/upload?share={grant['id']}"
    editor = await client.get(page + "&path=/Inner", headers=bobs)
    stranger = await client.get(page, headers=eves)
    missing = await client.get(page + "&path=/Nowhere", headers=bobs)
    unknown = await client.get(f"/app/upload?share={uuid4()}", headers=bobs)

    assert editor.status_code == 200, editor.text
    assert "Upload to Inner" in editor.text
    assert 'data-share="' + grant["id"] + '"' in editor.text
    for answer in (stranger, missing, unknown):
        assert answer.status_code == 404, answer.text
        assert grant["id"] not in answer.text
