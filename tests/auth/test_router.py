import asyncio
from uuid import UUID

import httpx

from tests.helpers import PASSWORD, Account


async def test_register_normalizes_the_email(client: httpx.AsyncClient) -> None:
    registered = await client.post(
        "/auth/register", json={"email": "  Carol@Example.COM ", "password": PASSWORD}
    )

    assert registered.status_code == 201
    login = await client.post(
        "/auth/login", json={"email": "CAROL@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200
    me = await client.get(
        "/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    assert me.json()["email"] == "carol@example.com"


async def test_register_twice_answers_as_the_first_time_and_changes_nothing(
    client: httpx.AsyncClient, alice: Account
) -> None:
    again = await client.post(
        "/auth/register", json={"email": "ALICE@example.com", "password": "another password"}
    )
    first_password = await client.post(
        "/auth/login", json={"email": alice.email, "password": PASSWORD}
    )

    assert again.status_code == 201
    assert set(again.json()) == {"detail"}
    assert first_password.status_code == 200


async def test_register_refuses_a_short_password(client: httpx.AsyncClient) -> None:
    refused = await client.post(
        "/auth/register", json={"email": "dan@example.com", "password": "1234567"}
    )

    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "validation_error"


async def test_register_refuses_an_invalid_email(client: httpx.AsyncClient) -> None:
    refused = await client.post("/auth/register", json={"email": "nope", "password": PASSWORD})

    assert refused.status_code == 422


async def test_login_answers_the_same_for_unknown_email_and_wrong_password(
    client: httpx.AsyncClient, alice: Account
) -> None:
    wrong_password = await client.post(
        "/auth/login", json={"email": alice.email, "password": "wrong password"}
    )
    unknown_email = await client.post(
        "/auth/login", json={"email": "nobody@example.com", "password": "wrong password"}
    )

    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json()
    assert wrong_password.json()["code"] == "invalid_credentials"


async def test_login_returns_a_bearer_token_pair(client: httpx.AsyncClient, alice: Account) -> None:
    login = await client.post("/auth/login", json={"email": alice.email, "password": PASSWORD})

    body = login.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["access_token"].count(".") == 2
    assert len(body["refresh_token"]) >= 40


async def test_me_returns_the_signed_in_account(client: httpx.AsyncClient, alice: Account) -> None:
    me = await client.get("/me", headers=alice.headers)

    assert me.status_code == 200
    assert me.json()["email"] == "alice@example.com"
    assert UUID(me.json()["id"]) == UUID(alice.user_id)


async def test_me_without_a_token_is_401(client: httpx.AsyncClient) -> None:
    me = await client.get("/me")

    assert me.status_code == 401
    assert me.headers["www-authenticate"] == "Bearer"


async def test_x_user_id_header_alone_is_not_trusted(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for path in ("/me", "/list/", f"/files/{alice.user_id}"):
        answer = await client.get(path, headers={"X-User-Id": alice.user_id})
        assert answer.status_code == 401, path


async def test_refresh_rotates_the_refresh_token(client: httpx.AsyncClient, alice: Account) -> None:
    refreshed = await client.post("/auth/refresh", json={"refresh_token": alice.refresh_token})

    assert refreshed.status_code == 200
    assert refreshed.json()["refresh_token"] != alice.refresh_token
    me = await client.get(
        "/me", headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    )
    assert me.status_code == 200


async def test_reusing_a_refresh_token_revokes_its_family(
    client: httpx.AsyncClient, alice: Account
) -> None:
    first = await client.post("/auth/refresh", json={"refresh_token": alice.refresh_token})
    newest = first.json()["refresh_token"]

    replayed = await client.post("/auth/refresh", json={"refresh_token": alice.refresh_token})
    after_replay = await client.post("/auth/refresh", json={"refresh_token": newest})

    assert replayed.status_code == 401
    assert replayed.json()["code"] == "invalid_refresh_token"
    assert after_replay.status_code == 401


async def test_refresh_families_are_independent(client: httpx.AsyncClient, alice: Account) -> None:
    laptop = await register_account_login(client, alice.email)
    await client.post("/auth/refresh", json={"refresh_token": alice.refresh_token})
    await client.post("/auth/refresh", json={"refresh_token": alice.refresh_token})

    still_signed_in = await client.post("/auth/refresh", json={"refresh_token": laptop})

    assert still_signed_in.status_code == 200


async def test_concurrent_refreshes_with_one_token_issue_one_pair(
    client: httpx.AsyncClient, alice: Account
) -> None:
    answers = await asyncio.gather(
        *(
            client.post("/auth/refresh", json={"refresh_token": alice.refresh_token})
            for _ in range(4)
        )
    )

    assert sorted(a.status_code for a in answers) == [200, 401, 401, 401]


async def test_unknown_refresh_token_is_401(client: httpx.AsyncClient) -> None:
    refused = await client.post("/auth/refresh", json={"refresh_token": "made-up"})

    assert refused.status_code == 401


async def register_account_login(client: httpx.AsyncClient, email: str) -> str:
    login = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    refresh_token: str = login.json()["refresh_token"]
    return refresh_token
