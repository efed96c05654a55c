"""The seed's ops/client scenario end to end: an ops user publishes documents to every client
by sharing a folder with the `client` role; verified clients list, browse and download them
through short-lived URLs, and upload nothing."""

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import api_client
from tests.files.test_tree import make_folder
from tests.helpers import assert_problem, upload_file, verified_account
from tests.roles.test_upload_policy import SEED_ROLES, roles_from_env
from tests.sharing.people_helpers import (
    browse,
    granted,
    share_downloads,
    shared_items,
    unverified_account,
)

AppWith = Callable[..., AbstractAsyncContextManager[FastAPI]]
URL_TTL = 3


async def test_ops_publishes_to_every_verified_client_who_downloads_and_cannot_upload(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    app_with: AppWith,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    roles = roles_from_env(monkeypatch, SEED_ROLES)
    plan_bytes, deck_bytes = b"PK\x03\x04 the 2026 plan", b"PK\x03\x04 the deck"
    async with (
        # Ops publishes to every client: this deployment lets members share with roles.
        app_with(roles=roles, presign_ttl_seconds=URL_TTL, role_shares_by="everyone") as app,
        api_client(app) as api,
    ):
        ops = await verified_account(api, engine, "olga@example.com", role="ops")
        customers = [
            await verified_account(api, engine, f"client{n}@example.com", role="client")
            for n in (1, 2)
        ]
        newcomer = await unverified_account(api, engine, "new@example.com", role="client")
        plan = await upload_file(api, web, ops, "Plan.docx", plan_bytes, folder="/published/2026")
        deck = await upload_file(api, web, ops, "Deck.pptx", deck_bytes, folder="/published")
        internal = await upload_file(api, web, ops, "Costs.xlsx", b"PK costs", folder="/internal")
        published = await make_folder(api, ops, "/published")

        # --- publishing: one share for the whole role --------------------------------------
        grant = await granted(
            api,
            ops,
            folder_id=published["folder_id"],
            role="client",
            permission="viewer",
            note="Documents for our clients",
        )

        for customer in customers:
            # --- listing and browsing --------------------------------------------------------
            (item,) = await shared_items(api, customer)
            assert (item["grant_id"], item["path"], item["kind"]) == (
                grant["id"],
                "/published",
                "folder",
            )
            assert (item["owner_email"], item["permission"], item["note"]) == (
                "olga@example.com",
                "viewer",
                "Documents for our clients",
            )
            top = (await browse(api, customer, grant["id"])).json()
            assert [(i["name"], i["path"]) for i in top["items"]] == [
                ("2026", "/published/2026"),
                ("Deck.pptx", "/published/Deck.pptx"),
            ]
            inside = (await browse(api, customer, grant["id"], "/2026")).json()
            assert [(i["id"], i["path"]) for i in inside["items"]] == [
                (plan["file_id"], "/published/2026/Plan.docx")
            ]

            # --- downloading through a short-lived URL ---------------------------------------
            asked_at = datetime.now(UTC)
            signed = await api.get(f"/download/{plan['file_id']}", headers=customer.headers)
            assert signed.status_code == 200, signed.text
            url = signed.json()["url"]
            assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == [str(URL_TTL)]
            expires_at = datetime.fromisoformat(signed.json()["expires_at"])
            assert timedelta(0) < expires_at - asked_at <= timedelta(seconds=URL_TTL + 1)
            fetched = await web.get(url)
            assert fetched.status_code == 200
            assert fetched.content == plan_bytes
            assert fetched.headers["content-disposition"].startswith("attachment;")
            deck_url = await api.get(f"/download/{deck['file_id']}", headers=customer.headers)
            assert (await web.get(deck_url.json()["url"])).content == deck_bytes

            # --- nothing else of the owner's, and no uploads ---------------------------------
            hidden = await api.get(f"/files/{internal['file_id']}", headers=customer.headers)
            assert_problem(hidden, 404, "file_not_found")
            through_share = await api.post(
                "/upload/",
                json={"filename": "Reply.docx", "size": 5, "share_id": grant["id"]},
                headers=customer.headers,
            )
            assert_problem(through_share, 403, "upload_not_allowed")
            own = await api.post(
                "/upload/", json={"filename": "Reply.docx", "size": 5}, headers=customer.headers
            )
            assert_problem(own, 403, "upload_not_allowed")

        # --- an address not yet verified sees nothing ---------------------------------------
        assert await shared_items(api, newcomer) == []
        assert_problem(await browse(api, newcomer, grant["id"]), 404, "grant_not_found")
        unverified_download = await api.get(
            f"/download/{plan['file_id']}", headers=newcomer.headers
        )
        assert_problem(unverified_download, 404, "file_not_found")

        # --- revoking: the next request finds nothing ---------------------------------------
        revoked = await api.delete(f"/shares/people/{grant['id']}", headers=ops.headers)
        assert revoked.status_code == 204
        for customer in customers:
            assert await shared_items(api, customer) == []
            assert_problem(await browse(api, customer, grant["id"]), 404, "grant_not_found")
            after = await api.get(f"/download/{plan['file_id']}", headers=customer.headers)
            assert_problem(after, 404, "file_not_found")

    # The URLs issued before the revocation lapse on their own, shortly.
    await asyncio.sleep(URL_TTL + 1.5)
    assert (await web.get(url)).status_code == 403
    recorded = await share_downloads(engine, plan["file_id"])
    assert recorded == [
        ("share", UUID(customer.user_id), UUID(grant["id"])) for customer in customers
    ]
