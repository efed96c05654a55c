"""Password-protected links: locked until a rate-limited unlock grants a short-lived pass."""

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.core.config import Settings
from dropp.main import create_app
from tests.files.test_tree import make_folder
from tests.helpers import Account, assert_problem, upload_file
from tests.sharing.link_helpers import (
    BROWSER_ACCEPT,
    LINK_PASSWORD,
    link_row,
    make_link,
    visitor,
)

AppWith = Callable[..., AbstractAsyncContextManager[FastAPI]]


async def locked_link(
    client: httpx.AsyncClient, web: httpx.AsyncClient, account: Account, **more: Any
) -> dict[str, Any]:
    file = await upload_file(client, web, account, "secret plans.txt", b"the plans")
    return await make_link(client, account, file_id=file["file_id"], password=LINK_PASSWORD, **more)


async def test_a_locked_link_shows_nothing_but_that_it_is_locked(
    client: httpx.AsyncClient, web: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    link = await locked_link(client, web, alice)
    token = link["token"]

    async with visitor(app) as anyone:
        shown = await anyone.get(f"/s/{token}")
        downloaded = await anyone.get(f"/s/{token}/download")
        page = await anyone.get(f"/s/{token}", headers={"Accept": BROWSER_ACCEPT})

    for answer in (shown, downloaded):
        body = assert_problem(answer, 401, "share_locked")
        assert "secret plans" not in answer.text
        assert set(body) == {"type", "title", "status", "detail", "code"}
    assert page.status_code == 401
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "secret plans" not in page.text
    assert f'action="/s/{token}/unlock"' in page.text
    assert 'type="password"' in page.text


async def test_a_password_in_the_url_does_nothing(
    client: httpx.AsyncClient, web: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    link = await locked_link(client, web, alice)
    token = link["token"]
    in_query = {"password": LINK_PASSWORD}

    async with visitor(app) as anyone:
        shown = await anyone.get(f"/s/{token}", params=in_query)
        downloaded = await anyone.get(f"/s/{token}/download", params=in_query)
        unlocked = await anyone.post(f"/s/{token}/unlock", params=in_query)
        after = await anyone.get(f"/s/{token}")

    assert_problem(shown, 401, "share_locked")
    assert_problem(downloaded, 401, "share_locked")
    assert_problem(unlocked, 422, "validation_error")
    assert "set-cookie" not in unlocked.headers
    assert_problem(after, 401, "share_locked")


async def test_unlocking_sets_a_cookie_for_the_link_only(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    engine: AsyncEngine,
) -> None:
    link = await locked_link(client, web, alice)
    token = link["token"]

    async with visitor(app) as anyone:
        unlocked = await anyone.post(f"/s/{token}/unlock", json={"password": LINK_PASSWORD})
        shown = await anyone.get(f"/s/{token}")
        downloaded = await anyone.get(f"/s/{token}/download")

    assert unlocked.status_code == 200, unlocked.text
    body = unlocked.json()
    assert set(body) == {"access", "expires_at"}
    assert LINK_PASSWORD not in body["access"]
    cookie = unlocked.headers["set-cookie"]
    assert cookie.startswith(f"dropp_share_access={body['access']};")
    assert f"Path=/s/{token}" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Max-Age=3600" in cookie or "Max-Age=3599" in cookie
    assert "Secure" not in cookie  # PUBLIC_URL is http here
    assert unlocked.headers["referrer-policy"] == "no-referrer"
    assert shown.status_code == 200, shown.text
    assert shown.json()["name"] == "secret plans.txt"
    assert downloaded.status_code == 302
    assert (await web.get(downloaded.headers["location"])).content == b"the plans"
    assert (await link_row(engine, link["id"]))["downloads_used"] == 1


async def test_an_api_client_sends_the_pass_in_a_header(
    client: httpx.AsyncClient, web: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    link = await locked_link(client, web, alice)
    token = link["token"]
    async with visitor(app) as unlocker:
        access = (
            await unlocker.post(f"/s/{token}/unlock", json={"password": LINK_PASSWORD})
        ).json()["access"]

    async with visitor(app, "192.0.2.50") as api:
        shown = await api.get(f"/s/{token}", headers={"X-Share-Access": access})
        downloaded = await api.get(
            f"/s/{token}/download",
            params={"redirect": "false"},
            headers={"X-Share-Access": access},
        )
        without = await api.get(f"/s/{token}")

    assert shown.status_code == 200, shown.text
    assert downloaded.status_code == 200, downloaded.text
    assert (await web.get(downloaded.json()["url"])).content == b"the plans"
    assert_problem(without, 401, "share_locked")


async def test_a_pass_opens_only_its_own_link_and_only_as_issued(
    client: httpx.AsyncClient, web: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    first = await locked_link(client, web, alice)
    second = await locked_link(client, web, alice)
    async with visitor(app) as unlocker:
        unlocked = await unlocker.post(
            f"/s/{first['token']}/unlock", json={"password": LINK_PASSWORD}
        )
    access = unlocked.json()["access"]
    expires, _, signature = access.partition(".")
    forged = [
        f"{int(expires) + 86400}.{signature}",
        f"{expires}.{signature[:-2]}AA",
        "1.x",
        "nonsense",
        "9" * 200,
    ]

    async with visitor(app, "192.0.2.51") as api:
        other = await api.get(f"/s/{second['token']}", headers={"X-Share-Access": access})
        tampered = [
            await api.get(f"/s/{first['token']}", headers={"X-Share-Access": value})
            for value in forged
        ]
        cookie = await api.get(
            f"/s/{second['token']}", headers={"Cookie": f"dropp_share_access={access}"}
        )

    assert_problem(other, 401, "share_locked")
    for answer in tampered:
        assert_problem(answer, 401, "share_locked")
    assert_problem(cookie, 401, "share_locked")


async def test_a_wrong_password_is_refused(
    client: httpx.AsyncClient, web: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    link = await locked_link(client, web, alice)
    token = link["token"]

    async with visitor(app) as anyone:
        wrong = await anyone.post(f"/s/{token}/unlock", json={"password": "not it at all"})
        empty = await anyone.post(f"/s/{token}/unlock", json={"password": ""})
        after = await anyone.get(f"/s/{token}")

    assert_problem(wrong, 401, "wrong_password")
    assert "set-cookie" not in wrong.headers
    assert_problem(empty, 422, "validation_error")
    assert_problem(after, 401, "share_locked")


async def test_unlocking_a_link_without_a_password_or_an_unknown_link(
    client: httpx.AsyncClient, web: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    file = await upload_file(client, web, alice, "open.txt", b"open")
    link = await make_link(client, alice, file_id=file["file_id"])

    async with visitor(app) as anyone:
        not_locked = await anyone.post(
            f"/s/{link['token']}/unlock", json={"password": LINK_PASSWORD}
        )
        unknown = await anyone.post(f"/s/{'C' * 43}/unlock", json={"password": LINK_PASSWORD})

    assert_problem(not_locked, 409, "share_not_locked")
    assert_problem(unknown, 404, "share_not_found")


async def test_the_page_form_unlocks_and_goes_back_to_the_link(
    client: httpx.AsyncClient, web: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    link = await locked_link(client, web, alice)
    token = link["token"]
    browser = {"Accept": BROWSER_ACCEPT}

    async with visitor(app) as anyone:
        wrong = await anyone.post(
            f"/s/{token}/unlock", data={"password": "guess guess"}, headers=browser
        )
        unlocked = await anyone.post(
            f"/s/{token}/unlock", data={"password": LINK_PASSWORD}, headers=browser
        )
        page = await anyone.get(f"/s/{token}", headers=browser)

    assert wrong.status_code == 401
    assert wrong.headers["content-type"].startswith("text/html")
    assert "not the link" in wrong.text
    assert 'type="password"' in wrong.text
    assert unlocked.status_code == 303, unlocked.text
    assert unlocked.headers["location"] == f"/s/{token}"
    assert f"Path=/s/{token}" in unlocked.headers["set-cookie"]
    assert page.status_code == 200, page.text
    assert "secret plans.txt" in page.text


async def test_a_pass_ends_with_the_link(
    client: httpx.AsyncClient, web: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    link = await locked_link(client, web, alice)
    token = link["token"]
    async with visitor(app) as anyone:
        assert (
            await anyone.post(f"/s/{token}/unlock", json={"password": LINK_PASSWORD})
        ).status_code == 200
        await client.delete(f"/shares/{link['id']}", headers=alice.headers)

        answer = await anyone.get(f"/s/{token}/download")

    assert_problem(answer, 404, "share_not_found")


async def test_guessing_a_links_password_from_one_address_is_rate_limited(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, app_with: AppWith
) -> None:
    link = await locked_link(client, web, alice)
    token = link["token"]
    async with (
        app_with(rate_limit_per_ip="100/minute", rate_limit_per_account="3/minute") as app,
        visitor(app, "10.1.0.1") as guesser,
    ):
        guesses = [
            await guesser.post(f"/s/{token}/unlock", json={"password": f"guess {number}"})
            for number in range(3)
        ]
        refused = await guesser.post(f"/s/{token}/unlock", json={"password": LINK_PASSWORD})
        form = await guesser.post(
            f"/s/{token}/unlock",
            data={"password": LINK_PASSWORD},
            headers={"Accept": BROWSER_ACCEPT},
        )

    for guess in guesses:
        assert_problem(guess, 401, "wrong_password")
    body = assert_problem(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert body["retry_after"] == int(refused.headers["Retry-After"])
    assert "set-cookie" not in refused.headers
    assert form.status_code == 429
    assert form.headers["content-type"].startswith("text/html")
    assert "Retry-After" in form.headers
    assert "set-cookie" not in form.headers


async def test_guessing_cannot_lock_the_right_password_out(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, app_with: AppWith
) -> None:
    """Anyone holding the link may hammer it: they lock out themselves, not its recipients."""
    link = await locked_link(client, web, alice)
    token = link["token"]
    async with app_with(rate_limit_per_ip="100/minute", rate_limit_per_account="3/minute") as app:
        hammered = []
        for address in ("10.1.0.1", "10.1.0.2", "10.1.0.3"):
            async with visitor(app, address) as guesser:
                hammered += [
                    await guesser.post(f"/s/{token}/unlock", json={"password": "wrong guess"})
                    for _ in range(5)
                ]
        async with visitor(app, "10.1.0.9") as recipient:
            unlocked = await recipient.post(f"/s/{token}/unlock", json={"password": LINK_PASSWORD})
            shown = await recipient.get(f"/s/{token}")

    assert [answer.status_code for answer in hammered] == ([401] * 3 + [429] * 2) * 3
    assert unlocked.status_code == 200, unlocked.text
    assert shown.status_code == 200, shown.text


async def test_a_link_password_must_be_long_enough(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    file = await upload_file(client, web, alice, "plans.txt", b"plans")

    short = await client.post(
        "/shares",
        json={"file_id": file["file_id"], "password": "1234567"},
        headers=alice.headers,
    )

    body = assert_problem(short, 422, "validation_error")
    assert "8" in body["detail"]


async def test_guessing_from_one_address_is_rate_limited_across_links(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account, app_with: AppWith
) -> None:
    links = [await locked_link(client, web, alice) for _ in range(3)]
    async with (
        app_with(rate_limit_per_ip="2/minute", rate_limit_per_account="100/minute") as app,
        visitor(app, "10.2.0.1") as guesser,
    ):
        answers = [
            await guesser.post(f"/s/{link['token']}/unlock", json={"password": "wrong guess"})
            for link in links
        ]

    assert_problem(answers[0], 401, "wrong_password")
    assert_problem(answers[1], 401, "wrong_password")
    assert_problem(answers[2], 429, "rate_limited")


async def test_unlocking_a_folder_view_goes_back_to_that_folder(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    folder = await make_folder(client, alice, "/club/minutes")
    await make_folder(client, alice, "/club/minutes/2026")
    link = await make_link(client, alice, folder_id=folder["folder_id"], password=LINK_PASSWORD)
    token = link["token"]
    browser = {"Accept": BROWSER_ACCEPT}

    async with visitor(app) as anyone:
        locked = await anyone.get(f"/s/{token}", params={"path": "/2026"}, headers=browser)
        unlocked = await anyone.post(
            f"/s/{token}/unlock", data={"password": LINK_PASSWORD, "path": "/2026"}, headers=browser
        )
        listed = await anyone.get(unlocked.headers["location"])

    assert locked.status_code == 401
    assert 'name="path" value="/2026"' in locked.text
    assert unlocked.status_code == 303, unlocked.text
    assert unlocked.headers["location"] == f"/s/{token}?path=%2F2026"
    assert listed.status_code == 200, listed.text
    assert (listed.json()["name"], listed.json()["path"]) == ("minutes", "/2026")


async def test_the_page_form_refuses_fields_it_does_not_know(
    client: httpx.AsyncClient, web: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    link = await locked_link(client, web, alice)
    token = link["token"]
    browser = {"Accept": BROWSER_ACCEPT}
    fields = {"password": LINK_PASSWORD, "path": "/", "remember": "yes"}

    async with visitor(app) as anyone:
        refused = await anyone.post(f"/s/{token}/unlock", data=fields, headers=browser)
        after = await anyone.get(f"/s/{token}")

    body = assert_problem(refused, 422, "validation_error")
    assert "remember" in body["detail"]
    assert "set-cookie" not in refused.headers
    assert_problem(after, 401, "share_locked")


def test_the_document_states_the_unlock_forms_fields_and_pages(settings: Settings) -> None:
    operation = create_app(settings).openapi()["paths"]["/s/{token}/unlock"]["post"]
    form = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]

    assert form["additionalProperties"] is False
    assert set(form["properties"]) == {"password", "path"}
    assert form["required"] == ["password"]
    # The form's answers are pages, a client's JSON gets problems: both are stated.
    for status in ("401", "404", "409", "429"):
        content = operation["responses"][status]["content"]
        assert set(content) == {"application/problem+json", "text/html"}, status
        assert content["application/problem+json"]["schema"]
