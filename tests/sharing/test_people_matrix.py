"""The authorization matrix of shares with people: every sharing route, and every existing
route a share reaches, called by the owner, a viewer, an editor, an unrelated user and
anonymously. One test per route; in each, the owner calls last, so a call that changes
something (a delete, a rename) never decides what the others get."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.files.test_tree import make_folder
from tests.helpers import Account, post_form, upload_file, verified_account
from tests.sharing.people_helpers import granted

ACTORS = ("anonymous", "stranger", "viewer", "editor", "owner")


@dataclass
class World:
    """Alice's folder /projects with report.txt (two revisions), shared with Bob as viewer and
    with Carol as editor; Dave has nothing to do with it."""

    accounts: dict[str, Account]
    folder_id: str
    file_id: str
    old_revision_id: str
    grants: dict[str, str]
    prepared: dict[str, Any] = field(default_factory=dict)

    def headers(self, actor: str) -> dict[str, str]:
        return {} if actor == "anonymous" else self.accounts[actor].headers

    def grant_of(self, actor: str) -> str:
        """The caller's own share of /projects; those who have none try the editor's."""
        return self.grants.get(actor, self.grants["editor"])


async def make_world(
    client: httpx.AsyncClient, web: httpx.AsyncClient, engine: AsyncEngine, alice: Account
) -> World:
    accounts = {
        "owner": alice,
        "viewer": await verified_account(client, engine, "bob@example.com"),
        "editor": await verified_account(client, engine, "carol@example.com"),
        "stranger": await verified_account(client, engine, "dave@example.com"),
    }
    first = await upload_file(client, web, alice, "report.txt", b"v1", folder="/projects")
    await upload_file(client, web, alice, "report.txt", b"v2", folder="/projects")
    folder = await make_folder(client, alice, "/projects")
    grants = {
        "viewer": (
            await granted(client, alice, folder_id=folder["folder_id"], email="bob@example.com")
        )["id"],
        "editor": (
            await granted(
                client,
                alice,
                folder_id=folder["folder_id"],
                email="carol@example.com",
                permission="editor",
            )
        )["id"],
    }
    return World(accounts, folder["folder_id"], first["file_id"], first["revision_id"], grants)


async def editors_upload(
    client: httpx.AsyncClient, web: httpx.AsyncClient, world: World, **fields: Any
) -> dict[str, Any]:
    """An upload Carol started through her share, its bytes already in storage."""
    started = await client.post(
        "/upload/",
        json={"filename": "new.txt", "size": 3, "share_id": world.grants["editor"], **fields},
        headers=world.headers("editor"),
    )
    assert started.status_code == 201, started.text
    if "multipart" not in fields:
        await post_form(web, started.json(), b"new")
    body: dict[str, Any] = started.json()
    return body


Prepare = Callable[[httpx.AsyncClient, httpx.AsyncClient, World], Awaitable[None]]


async def prepare_upload(client: httpx.AsyncClient, web: httpx.AsyncClient, world: World) -> None:
    world.prepared["upload"] = await editors_upload(client, web, world)


async def prepare_multipart(
    client: httpx.AsyncClient, web: httpx.AsyncClient, world: World
) -> None:
    world.prepared["upload"] = await editors_upload(client, web, world, multipart=True)


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    url: Callable[[World, str], str]
    expected: dict[str, int]
    body: Callable[[World, str], dict[str, Any]] | None = None
    prepare: Prepare | None = None


def everyone(owner: int, viewer: int, editor: int, stranger: int) -> dict[str, int]:
    return {
        "owner": owner,
        "viewer": viewer,
        "editor": editor,
        "stranger": stranger,
        "anonymous": 401,
    }


READERS = everyone(owner=200, viewer=200, editor=200, stranger=404)
OWNER_ONLY = everyone(owner=200, viewer=404, editor=404, stranger=404)

ROUTES = [
    # --- the sharing routes -----------------------------------------------------------------
    Route(
        "share",
        "POST",
        lambda w, _: "/shares/people",
        everyone(owner=201, viewer=404, editor=404, stranger=404),
        body=lambda w, _: {
            "folder_id": w.folder_id,
            "email": "erin@example.com",
            "permission": "viewer",
        },
    ),
    Route("list grants", "GET", lambda w, _: "/shares/people", READERS | {"stranger": 200}),
    Route(
        "change a grant",
        "PATCH",
        lambda w, _: f"/shares/people/{w.grants['viewer']}",
        OWNER_ONLY,
        body=lambda w, _: {"permission": "editor"},
    ),
    Route(
        "remove a grant",
        "DELETE",
        lambda w, _: f"/shares/people/{w.grants['viewer']}",
        everyone(owner=204, viewer=404, editor=404, stranger=404),
    ),
    Route("shared with me", "GET", lambda w, _: "/shared", READERS | {"stranger": 200}),
    Route(
        "browse a share",
        "GET",
        lambda w, actor: f"/shared/{w.grant_of(actor)}/items",
        everyone(owner=404, viewer=200, editor=200, stranger=404),
    ),
    Route(
        "browse someone else's share",
        "GET",
        lambda w, _: f"/shared/{w.grants['viewer']}/items",
        everyone(owner=404, viewer=200, editor=404, stranger=404),
    ),
    # --- reading through the usual routes -------------------------------------------------
    Route("file metadata", "GET", lambda w, _: f"/files/{w.file_id}", READERS),
    Route("download", "GET", lambda w, _: f"/download/{w.file_id}", READERS),
    Route(
        "download redirect",
        "GET",
        lambda w, _: f"/download/{w.file_id}?redirect=true",
        everyone(owner=302, viewer=302, editor=302, stranger=404),
    ),
    Route("revisions", "GET", lambda w, _: f"/files/{w.file_id}/revisions", READERS),
    Route(
        "revision download",
        "GET",
        lambda w, _: f"/files/{w.file_id}/revisions/{w.old_revision_id}/download",
        READERS,
    ),
    # --- uploading through a share --------------------------------------------------------
    Route(
        "upload through a share",
        "POST",
        lambda w, _: "/upload/",
        everyone(owner=404, viewer=403, editor=201, stranger=404),
        body=lambda w, actor: {"filename": "up.txt", "size": 2, "share_id": w.grant_of(actor)},
    ),
    Route(
        "complete the editor's upload",
        "POST",
        lambda w, _: f"/upload/{w.prepared['upload']['file_id']}/complete",
        READERS | {"viewer": 404},
        prepare=prepare_upload,
    ),
    Route(
        "parts of the editor's upload",
        "GET",
        lambda w, _: f"/upload/{w.prepared['upload']['file_id']}/parts",
        READERS | {"viewer": 404},
        prepare=prepare_multipart,
    ),
    # --- everything else stays the owner's ------------------------------------------------
    Route(
        "rename",
        "PATCH",
        lambda w, _: f"/files/{w.file_id}",
        OWNER_ONLY,
        body=lambda w, _: {"name": "renamed.txt"},
    ),
    Route(
        "restore a revision",
        "POST",
        lambda w, _: f"/files/{w.file_id}/revisions/{w.old_revision_id}/restore",
        OWNER_ONLY,
    ),
    Route(
        "trash the file",
        "DELETE",
        lambda w, _: f"/files/{w.file_id}",
        everyone(owner=204, viewer=404, editor=404, stranger=404),
    ),
    Route(
        "trash the folder",
        "DELETE",
        lambda w, _: f"/folders/{w.folder_id}",
        everyone(owner=204, viewer=404, editor=404, stranger=404),
    ),
    Route(
        "share the file further",
        "POST",
        lambda w, _: "/shares/people",
        everyone(owner=201, viewer=404, editor=404, stranger=404),
        body=lambda w, _: {"file_id": w.file_id, "role": "member", "permission": "editor"},
    ),
    Route(
        "make a link",
        "POST",
        lambda w, _: "/shares",
        everyone(owner=201, viewer=404, editor=404, stranger=404),
        body=lambda w, _: {"file_id": w.file_id},
    ),
]


@pytest.mark.parametrize("route", ROUTES, ids=[route.name for route in ROUTES])
async def test_authorization(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    alice: Account,
    route: Route,
) -> None:
    world = await make_world(client, web, engine, alice)
    if route.prepare is not None:
        await route.prepare(client, web, world)

    answers = {}
    for actor in ACTORS:
        answered = await client.request(
            route.method,
            route.url(world, actor),
            json=route.body(world, actor) if route.body else None,
            headers=world.headers(actor),
        )
        answers[actor] = answered

    assert {actor: answers[actor].status_code for actor in ACTORS} == route.expected, {
        actor: answers[actor].text for actor in ACTORS
    }
    for actor, answer in answers.items():
        if answer.status_code >= 400:
            assert answer.headers["content-type"].startswith("application/problem+json")
            if answer.status_code == 404:
                # Another user's node or share is never described, only said to be absent.
                assert "report.txt" not in answer.text
                assert "/projects" not in answer.text, (actor, answer.text)
