"""Registration and password reset tell nothing of which addresses have accounts: the same
answer, and the same work before answering, for an address in use and a new one. The owner
of an address in use learns of the attempt by email instead."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.auth.conftest import Inbox
from tests.helpers import PASSWORD, register_account


class Observed:
    """The SQL statements (verb and table) the app sent before it started its answer."""

    def __init__(self) -> None:
        self.before_answer: list[str] | None = None


@contextmanager
def statements_of_the_process() -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]).split()[0].upper() + " " + _table(str(args[2])))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def _table(statement: str) -> str:
    words = statement.replace("(", " ").split()
    for keyword in ("INTO", "FROM", "UPDATE"):
        if keyword in words:
            return words[words.index(keyword) + 1]
    return ""


def observing(app: FastAPI, observed: Observed, seen: list[str]) -> Any:
    """The app, noting which statements ran before the answer started (a background task
    runs after it)."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        async def tap(message: Any) -> None:
            if message["type"] == "http.response.start":
                observed.before_answer = list(seen)
            await send(message)

        await app(scope, receive, tap)

    return wrapped


async def observe(app: FastAPI, path: str, body: dict[str, str]) -> tuple[httpx.Response, Observed]:
    observed = Observed()
    with statements_of_the_process() as seen:
        transport = httpx.ASGITransport(app=observing(app, observed, seen))
        async with httpx.AsyncClient(transport=transport, base_url="http://dropp.test") as api:
            answer = await api.post(path, json=body)
    return answer, observed


async def test_registering_an_address_in_use_answers_as_for_a_new_one(
    mail_app: FastAPI, mail_client: httpx.AsyncClient, inbox: Inbox
) -> None:
    app = mail_app
    await register_account(mail_client, "erin@example.com")
    inbox.messages.clear()

    taken, taken_work = await observe(
        app, "/auth/register", {"email": "ERIN@example.com", "password": "someone else's"}
    )
    new, new_work = await observe(
        app, "/auth/register", {"email": "frank@example.com", "password": "frank's own"}
    )

    assert (taken.status_code, taken.json()) == (new.status_code, new.json())
    assert taken.status_code == 201
    assert set(taken.headers) == set(new.headers)
    assert taken_work.before_answer == new_work.before_answer
    [notice] = inbox.to("erin@example.com")
    text = notice.get_body(("plain",))
    assert text is not None
    assert "already has a Dropp account" in text.get_content()
    assert "Confirm your email" in inbox.to("frank@example.com")[0]["Subject"]
    # The attempt changed nothing: the owner still signs in with the first password.
    still = await mail_client.post(
        "/auth/login", json={"email": "erin@example.com", "password": PASSWORD}
    )
    assert still.status_code == 200
    refused = await mail_client.post(
        "/auth/login", json={"email": "erin@example.com", "password": "someone else's"}
    )
    assert refused.status_code == 401


async def test_the_notice_to_an_address_in_use_offers_a_password_reset(
    mail_client: httpx.AsyncClient, inbox: Inbox
) -> None:
    await register_account(mail_client, "erin@example.com")
    inbox.messages.clear()

    await mail_client.post(
        "/auth/register", json={"email": "erin@example.com", "password": "forgot it again"}
    )
    link = inbox.last_link("erin@example.com")
    page = await mail_client.get(link)

    assert link.startswith("/auth/password-reset/confirm?token=")
    assert page.status_code == 200
    assert 'type="password"' in page.text


async def test_a_password_reset_does_the_same_work_before_answering_for_any_address(
    mail_app: FastAPI, mail_client: httpx.AsyncClient, inbox: Inbox
) -> None:
    app = mail_app
    await register_account(mail_client, "erin@example.com")
    inbox.messages.clear()

    known, known_work = await observe(app, "/auth/password-reset", {"email": "erin@example.com"})
    unknown, unknown_work = await observe(
        app, "/auth/password-reset", {"email": "nobody@example.com"}
    )

    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
    assert known_work.before_answer == unknown_work.before_answer
    # The link is still issued and mailed, after the answer.
    assert inbox.last_link("erin@example.com").startswith("/auth/password-reset/confirm?token=")
    assert inbox.to("nobody@example.com") == []
