"""Changing a password with the current one: every session ends, the new one signs in."""

import httpx

from tests.helpers import PASSWORD, Account, assert_problem

NEW = "a new and longer passphrase"


async def change(
    client: httpx.AsyncClient, account: Account, current: str, new: str
) -> httpx.Response:
    return await client.post(
        "/auth/password",
        json={"current_password": current, "new_password": new},
        headers=account.headers,
    )


async def test_the_new_password_signs_in_and_every_old_session_ends(
    client: httpx.AsyncClient, alice: Account
) -> None:
    answer = await change(client, alice, PASSWORD, NEW)

    assert answer.status_code == 204, answer.text
    refreshed = await client.post("/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert refreshed.status_code == 401
    assert (await client.get("/me", headers=alice.headers)).status_code == 401
    old = await client.post("/auth/login", json={"email": alice.email, "password": PASSWORD})
    assert_problem(old, 401, "invalid_credentials")
    new = await client.post("/auth/login", json={"email": alice.email, "password": NEW})
    assert new.status_code == 200, new.text


async def test_a_wrong_current_password_or_a_short_new_one_changes_nothing(
    client: httpx.AsyncClient, alice: Account
) -> None:
    assert_problem(await change(client, alice, "not it at all", NEW), 401, "invalid_credentials")
    assert_problem(await change(client, alice, PASSWORD, "short"), 422, "validation_error")
    assert_problem(
        await client.post(
            "/auth/password", json={"current_password": PASSWORD, "new_password": NEW}
        ),
        401,
        "not_authenticated",
    )

    assert (await client.get("/me", headers=alice.headers)).status_code == 200
    kept = await client.post("/auth/login", json={"email": alice.email, "password": PASSWORD})
    assert kept.status_code == 200, kept.text
