import logging
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urljoin, urlsplit
from uuid import UUID, uuid4

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.core.config import Settings
from dropp.main import create_app
from tests.auth.conftest import Inbox, free_port
from tests.conftest import api_client
from tests.helpers import PASSWORD, register_account

NEW_PASSWORD = "a brand new passphrase"


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


async def me(client: httpx.AsyncClient, access_token: str) -> dict[str, object]:
    answer = await client.get("/me", headers={"Authorization": f"Bearer {access_token}"})
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


async def verify(client: httpx.AsyncClient, link: str) -> httpx.Response:
    return await client.post("/auth/verify-email", data={"token": token_of(link)})


async def reset(client: httpx.AsyncClient, link: str, password: str) -> httpx.Response:
    return await client.post(
        "/auth/password-reset/confirm", data={"token": token_of(link), "password": password}
    )


def form_fields(path: str) -> dict[str, str]:
    """What the page's form at `path` posts besides the token."""
    return {"password": NEW_PASSWORD} if path == "/auth/password-reset/confirm" else {}


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/auth/login", json={"email": email, "password": password})


async def test_registration_mails_a_link_that_verifies_only_on_post(
    mail_client: httpx.AsyncClient, inbox: Inbox
) -> None:
    account = await register_account(mail_client, "erin@example.com")

    [mail] = inbox.to("erin@example.com")
    assert mail["From"] == "Dropp <no-reply@localhost>"
    assert "Confirm your email" in mail["Subject"]
    link = inbox.last_link("erin@example.com")
    assert link.startswith("/auth/verify-email?token=")
    assert len(token_of(link)) >= 22  # at least 128 bits, URL-safe base64

    page = await mail_client.get(link)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert "Verify my email" in page.text
    form = re.search(r'<form method="post" action="([^"]*)"', page.text)
    assert form is not None
    assert urljoin(link, form.group(1)) == "/auth/verify-email"
    assert (await me(mail_client, account.access_token))["email_verified"] is False

    verified = await verify(mail_client, link)
    assert verified.status_code == 200
    assert "erin@example.com" in verified.text
    assert (await me(mail_client, account.access_token))["email_verified"] is True
    refreshed = await mail_client.post(
        "/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert refreshed.status_code == 200
    claims = jwt.decode(refreshed.json()["access_token"], options={"verify_signature": False})
    assert claims["email_verified"] is True


async def test_verification_link_works_once(mail_client: httpx.AsyncClient, inbox: Inbox) -> None:
    await register_account(mail_client, "erin@example.com")
    link = inbox.last_link("erin@example.com")
    assert (await verify(mail_client, link)).status_code == 200

    again = await verify(mail_client, link)
    opened_again = await mail_client.get(link)

    # The link existed and is used up: gone, not unknown.
    assert again.status_code == opened_again.status_code == 410
    assert again.headers["content-type"].startswith("text/html")
    assert "already used" in again.text


async def test_expired_verification_link_is_refused(
    mail_client: httpx.AsyncClient, inbox: Inbox, engine: AsyncEngine
) -> None:
    account = await register_account(mail_client, "erin@example.com")
    link = inbox.last_link("erin@example.com")
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE email_token SET expires_at = now() - interval '1 second'")
        )

    opened = await mail_client.get(link)
    posted = await verify(mail_client, link)

    assert opened.status_code == posted.status_code == 410
    assert "expired" in posted.text
    assert (await me(mail_client, account.access_token))["email_verified"] is False


@pytest.mark.parametrize("path", ["/auth/verify-email", "/auth/password-reset/confirm"])
async def test_an_unknown_email_link_is_not_found(
    mail_client: httpx.AsyncClient, path: str
) -> None:
    # As share links answer: a link that does not exist is a 404, here as the link's page.
    opened = await mail_client.get(path, params={"token": "x" * 43})
    posted = await mail_client.post(path, data={"token": "x" * 43, **form_fields(path)})

    for answer in (opened, posted):
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.headers["cache-control"] == "no-store"
        assert "This link cannot be used" in answer.text


@pytest.mark.parametrize("path", ["/auth/verify-email", "/auth/password-reset/confirm"])
async def test_a_missing_or_damaged_email_link_token_is_a_bad_request_page(
    mail_client: httpx.AsyncClient, path: str
) -> None:
    answers = [
        await mail_client.get(path),
        await mail_client.get(path, params={"token": ""}),
        await mail_client.get(path, params={"token": "x" * 5000}),
        await mail_client.post(path),
        await mail_client.post(path, data=form_fields(path)),
        await mail_client.post(path, data={"token": "", **form_fields(path)}),
    ]

    for answer in answers:
        assert answer.status_code == 400, answer.request
        assert answer.headers["content-type"].startswith("text/html")
        assert "This link cannot be used" in answer.text


async def test_verification_link_does_not_verify_an_address_changed_since(
    mail_client: httpx.AsyncClient, inbox: Inbox, engine: AsyncEngine
) -> None:
    account = await register_account(mail_client, "erin@example.com")
    link = inbox.last_link("erin@example.com")
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE user_account SET email = 'erin.new@example.com' WHERE id = :id"),
            {"id": UUID(account.user_id)},
        )

    refused = await verify(mail_client, link)

    assert refused.status_code == 410
    assert "no longer uses" in refused.text
    assert (await me(mail_client, account.access_token))["email_verified"] is False


async def test_resend_mails_a_new_link_until_verified(
    mail_client: httpx.AsyncClient, inbox: Inbox
) -> None:
    account = await register_account(mail_client, "erin@example.com")
    first = inbox.last_link("erin@example.com")

    resent = await mail_client.post("/auth/verify-email/resend", headers=account.headers)

    assert resent.status_code == 202
    assert len(inbox.to("erin@example.com")) == 2
    second = inbox.last_link("erin@example.com")
    assert second != first
    assert (await verify(mail_client, second)).status_code == 200
    again = await mail_client.post("/auth/verify-email/resend", headers=account.headers)
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["code"] == "email_already_verified"
    assert len(inbox.to("erin@example.com")) == 2


async def test_resend_needs_an_access_token(mail_client: httpx.AsyncClient) -> None:
    refused = await mail_client.post("/auth/verify-email/resend")

    assert refused.status_code == 401
    assert refused.json()["code"] == "not_authenticated"


async def test_registration_succeeds_when_the_mail_server_is_down(
    app_with: Callable[..., AbstractAsyncContextManager[FastAPI]],
    fresh_rows: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on this port: every connection is refused.
    down = {"smtp_host": "127.0.0.1", "smtp_port": free_port(), "smtp_security": "none"}
    async with app_with(**down) as app, api_client(app) as client:
        with caplog.at_level(logging.ERROR, logger="dropp.auth.email_links"):
            account = await register_account(client, "erin@example.com")

        assert any("could not send" in r.getMessage() for r in caplog.records)
        assert (await me(client, account.access_token))["email"] == "erin@example.com"
        resent = await client.post("/auth/verify-email/resend", headers=account.headers)
        assert resent.status_code == 503
        assert resent.json()["code"] == "email_not_sent"


async def test_log_mailer_logs_the_link_when_smtp_is_not_configured(
    app_with: Callable[..., AbstractAsyncContextManager[FastAPI]],
    fresh_rows: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with app_with(smtp_host=None) as app, api_client(app) as client:
        with caplog.at_level(logging.WARNING, logger="dropp.mail"):
            account = await register_account(client, "erin@example.com")

        [record] = [r for r in caplog.records if r.name == "dropp.mail.sender"]
        assert record.levelno == logging.WARNING
        match = re.search(r"http://\S+/auth/verify-email\?token=\S+", record.getMessage())
        assert match is not None, record.getMessage()
        assert (await verify(client, match.group())).status_code == 200
        assert (await me(client, account.access_token))["email_verified"] is True


async def test_password_reset_for_an_unknown_email_answers_the_same_and_sends_nothing(
    mail_client: httpx.AsyncClient, inbox: Inbox
) -> None:
    await register_account(mail_client, "erin@example.com")
    inbox.messages.clear()

    unknown = await mail_client.post("/auth/password-reset", json={"email": "nobody@example.com"})
    known = await mail_client.post("/auth/password-reset", json={"email": "ERIN@example.com"})

    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json()
    assert [m["To"] for m in inbox.messages] == ["erin@example.com"]


async def test_password_reset_refuses_a_missing_email(mail_client: httpx.AsyncClient) -> None:
    refused = await mail_client.post("/auth/password-reset", json={})

    assert refused.status_code == 422
    assert refused.json()["code"] == "validation_error"


async def test_password_reset_skips_an_unverified_account_without_password(
    mail_client: httpx.AsyncClient, inbox: Inbox, engine: AsyncEngine
) -> None:
    # An account from a provider that never proved this address.
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO user_account (id, email) VALUES (:id, 'gus@example.com')"),
            {"id": uuid4()},
        )

    answer = await mail_client.post("/auth/password-reset", json={"email": "gus@example.com"})

    assert answer.status_code == 202
    assert inbox.messages == []


async def test_password_reset_end_to_end(
    mail_client: httpx.AsyncClient, inbox: Inbox, engine: AsyncEngine
) -> None:
    account = await register_account(mail_client, "erin@example.com")
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO web_session (id, user_id, token_hash, expires_at)"
                " VALUES (:id, :user_id, :hash, :expires_at)"
            ),
            {
                "id": uuid4(),
                "user_id": UUID(account.user_id),
                "hash": b"\x01" * 32,
                "expires_at": datetime.now(UTC) + timedelta(hours=1),
            },
        )

    requested = await mail_client.post("/auth/password-reset", json={"email": account.email})
    assert requested.status_code == 202
    assert inbox.to(account.email)[-1]["Subject"] == "Reset your Dropp password"
    link = inbox.last_link(account.email)
    assert link.startswith("/auth/password-reset/confirm?token=")

    form = await mail_client.get(link)
    assert form.status_code == 200
    assert 'name="password"' in form.text
    action = re.search(r'<form method="post" action="([^"]*)"', form.text)
    assert action is not None
    assert urljoin(link, action.group(1)) == "/auth/password-reset/confirm"
    too_short = await reset(mail_client, link, "short")
    assert too_short.status_code == 400
    assert 'name="password"' in too_short.text
    assert (await login(mail_client, account.email, PASSWORD)).status_code == 200

    changed = await reset(mail_client, link, NEW_PASSWORD)

    assert changed.status_code == 200
    assert "password is changed" in changed.text
    assert (await login(mail_client, account.email, PASSWORD)).status_code == 401
    assert (await login(mail_client, account.email, NEW_PASSWORD)).status_code == 200
    old_refresh = await mail_client.post(
        "/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert old_refresh.status_code == 401
    assert old_refresh.json()["code"] == "invalid_refresh_token"
    async with engine.connect() as connection:
        open_sessions = await connection.scalar(
            text("SELECT count(*) FROM web_session WHERE revoked_at IS NULL")
        )
        verified_at = await connection.scalar(
            text("SELECT email_verified_at FROM user_account WHERE id = :id"),
            {"id": UUID(account.user_id)},
        )
    assert open_sessions == 0
    # Following the link proved control of the mailbox.
    assert verified_at is not None


async def test_password_reset_link_works_once_and_retires_the_others(
    mail_client: httpx.AsyncClient, inbox: Inbox
) -> None:
    account = await register_account(mail_client, "erin@example.com")
    await mail_client.post("/auth/password-reset", json={"email": account.email})
    first = inbox.last_link(account.email)
    await mail_client.post("/auth/password-reset", json={"email": account.email})
    second = inbox.last_link(account.email)
    assert (await reset(mail_client, second, NEW_PASSWORD)).status_code == 200

    reused = await reset(mail_client, second, "yet another password")
    older = await reset(mail_client, first, "yet another password")
    opened = await mail_client.get(first)

    assert reused.status_code == older.status_code == opened.status_code == 410
    assert "already used" in reused.text
    assert (await login(mail_client, account.email, NEW_PASSWORD)).status_code == 200


async def test_expired_password_reset_link_is_refused(
    mail_client: httpx.AsyncClient, inbox: Inbox, engine: AsyncEngine
) -> None:
    account = await register_account(mail_client, "erin@example.com")
    await mail_client.post("/auth/password-reset", json={"email": account.email})
    link = inbox.last_link(account.email)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE email_token SET expires_at = now() - interval '1 second'"
                " WHERE purpose = 'reset_password'"
            )
        )

    refused = await reset(mail_client, link, NEW_PASSWORD)

    assert refused.status_code == 410
    assert "expired" in refused.text
    assert (await login(mail_client, account.email, PASSWORD)).status_code == 200
    assert (
        await mail_client.post("/auth/refresh", json={"refresh_token": account.refresh_token})
    ).status_code == 200


async def test_verification_link_cannot_reset_a_password(
    mail_client: httpx.AsyncClient, inbox: Inbox
) -> None:
    account = await register_account(mail_client, "erin@example.com")
    verification = inbox.last_link(account.email)

    refused = await reset(mail_client, verification, NEW_PASSWORD)

    # No reset link has this token.
    assert refused.status_code == 404
    assert (await login(mail_client, account.email, PASSWORD)).status_code == 200


async def test_password_reset_requests_are_rate_limited_per_account(
    app_with: Callable[..., AbstractAsyncContextManager[FastAPI]],
    smtp: tuple[Inbox, int],
    fresh_rows: None,
) -> None:
    inbox, port = smtp
    limited = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        "rate_limit_per_account": "2/minute",
    }
    async with app_with(**limited) as app, api_client(app) as client:
        account = await register_account(client, "erin@example.com")
        answers = [
            await client.post("/auth/password-reset", json={"email": account.email})
            for _ in range(3)
        ]
        other = await client.post("/auth/password-reset", json={"email": "x@example.com"})

        assert [a.status_code for a in answers] == [202, 202, 429]
        assert answers[2].json()["code"] == "rate_limited"
        assert "Retry-After" in answers[2].headers
        assert other.status_code == 202
        assert len([m for m in inbox.to(account.email) if "Reset" in m["Subject"]]) == 2


async def test_password_reset_confirmations_are_rate_limited_per_client(
    app_with: Callable[..., AbstractAsyncContextManager[FastAPI]], fresh_rows: None
) -> None:
    async with (
        app_with(smtp_host=None, rate_limit_per_ip="2/minute") as app,
        api_client(app) as client,
    ):
        answers = [
            await client.post(
                "/auth/password-reset/confirm",
                data={"token": "x" * 43, "password": NEW_PASSWORD},
            )
            for _ in range(3)
        ]

        assert [a.status_code for a in answers] == [404, 404, 429]
        assert answers[2].json()["code"] == "rate_limited"


async def test_the_link_forms_refuse_fields_they_do_not_know(
    mail_client: httpx.AsyncClient, inbox: Inbox
) -> None:
    account = await register_account(mail_client, "erin@example.com")
    link = inbox.last_link(account.email)
    await mail_client.post("/auth/password-reset", json={"email": account.email})
    reset_link = inbox.last_link(account.email)

    verifying = await mail_client.post(
        "/auth/verify-email", data={"token": token_of(link), "remember": "yes"}
    )
    changed = await mail_client.post(
        "/auth/password-reset/confirm",
        data={"token": token_of(reset_link), "password": NEW_PASSWORD, "remember": "yes"},
    )

    for refused in (verifying, changed):
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "remember" in refused.json()["detail"]
    # Nothing was used up: the links still work, the reset form with every field it sends.
    assert (await verify(mail_client, link)).status_code == 200
    page = await mail_client.get(reset_link)
    sent = dict.fromkeys(re.findall(r'<input[^>]* name="([^"]+)"', page.text), "")
    assert set(sent) == {"token", "username", "password"}
    sent.update(token=token_of(reset_link), username=account.email, password=NEW_PASSWORD)
    changed = await mail_client.post("/auth/password-reset/confirm", data=sent)
    assert changed.status_code == 200, changed.text


def test_the_document_states_the_link_pages_answers(settings: Settings) -> None:
    document = create_app(settings).openapi()
    paths = document["paths"]
    operations = [
        (paths[path][method], method)
        for path in ("/auth/verify-email", "/auth/password-reset/confirm")
        for method in ("get", "post")
    ]

    for operation, method in operations:
        if method == "get":
            [token] = operation["parameters"]
            assert token["name"] == "token"
            assert token["required"] is True
        else:
            body = operation["requestBody"]
            assert body["required"] is True
            [form] = body["content"].values()
            schema = document["components"]["schemas"][form["schema"]["$ref"].rsplit("/", 1)[1]]
            assert "token" in schema["required"]
            assert schema["additionalProperties"] is False
        for status in ("400", "404", "410"):
            assert "text/html" in operation["responses"][status]["content"], (method, status)
