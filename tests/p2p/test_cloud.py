"""The cloud fallback: the file through storage for the one receiver, then gone."""

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.core.config import Settings
from dropp.core.db import create_engine, create_sessionmaker
from dropp.p2p.service import storage_key
from dropp.storage.s3 import Storage
from dropp.sweeper.transfers import sweep_transfers
from tests.helpers import Account, assert_problem, register_account
from tests.p2p.conftest import Sockets, hear, refusal, say

DATA = b"a file that takes the long way round\n" * 1000
OFFER = {"name": "long way.txt", "size": len(DATA), "sha256": hashlib.sha256(DATA).hexdigest()}


async def _post(web: httpx.AsyncClient, form: dict[str, object], data: bytes) -> httpx.Response:
    return await web.post(
        str(form["url"]), data=form["fields"], files={"file": ("upload.bin", data)}
    )


async def _store(
    p2p_url: str, sender: Account, web: httpx.AsyncClient, transfer: str, *, confirm: bool
) -> None:
    """The sender's fallback: the file posted with the transfer's form, then confirmed."""
    async with httpx.AsyncClient(base_url=p2p_url, headers=sender.headers) as api:
        form = (await api.post(f"/p2p/transfers/{transfer}/upload")).json()
        assert (await _post(web, form, DATA)).status_code == 204
        if confirm:
            assert (await api.post(f"/p2p/transfers/{transfer}/stored")).status_code == 204


async def test_a_file_through_storage_reaches_the_receiver_and_is_deleted(
    sockets: Sockets, p2p_url: str, sender: Account, web: httpx.AsyncClient, storage: Storage
) -> None:
    sending, opening = await sockets.opened_by(p2p_url, sender, **OFFER)
    receiving, _ = await sockets.joined(p2p_url, sending, opening["code"])
    await say(receiving, {"type": "fallback", "reason": "no route"})
    assert await hear(sending) == {"type": "fallback", "from": "receiver", "reason": "no route"}

    transfer = opening["transfer_id"]
    async with httpx.AsyncClient(base_url=p2p_url, headers=sender.headers) as api:
        early = await api.post(f"/p2p/transfers/{transfer}/stored")
        assert_problem(early, 409, "not_stored")
        answer = await api.post(f"/p2p/transfers/{transfer}/upload")
        assert answer.status_code == 200, answer.text
        form = answer.json()
        # Storage holds the sender to what it declared.
        assert (await _post(web, form, DATA[:-1] + b"?")).status_code == 400
        assert (await _post(web, form, DATA + b"!")).status_code == 400
        assert (await _post(web, form, DATA)).status_code == 204
        stored = await api.post(f"/p2p/transfers/{transfer}/stored")
        assert stored.status_code == 204, stored.text

    assert await hear(sending) == {"type": "stored"}
    link = await hear(receiving)
    assert link["type"] == "download"
    fetched = await web.get(link["url"])
    assert fetched.content == DATA
    assert 'filename="long way.txt"' in fetched.headers["content-disposition"]
    await say(receiving, {"type": "done", "via": "cloud", "sha256": OFFER["sha256"]})
    assert await hear(sending) == {"type": "done", "via": "cloud", "sha256": OFFER["sha256"]}
    await receiving.wait_closed()
    assert await storage.head(storage_key(uuid.UUID(transfer))) is None
    # The link stops working with the copy.
    assert (await web.get(link["url"])).status_code in (403, 404)


async def test_a_sender_may_go_once_storage_holds_the_file(
    sockets: Sockets, p2p_url: str, sender: Account, web: httpx.AsyncClient
) -> None:
    sending, opening = await sockets.opened_by(p2p_url, sender, **OFFER)
    receiving, _ = await sockets.joined(p2p_url, sending, opening["code"])
    await _store(p2p_url, sender, web, opening["transfer_id"], confirm=True)
    assert await hear(sending) == {"type": "stored"}
    await sending.close()
    link = await hear(receiving)
    assert (await web.get(link["url"])).content == DATA
    await say(receiving, {"type": "done", "via": "cloud", "sha256": OFFER["sha256"]})
    await receiving.wait_closed()
    assert receiving.close_code == 1000


async def test_the_fallback_routes_are_the_senders_alone(
    sockets: Sockets, p2p_url: str, sender: Account, engine: AsyncEngine
) -> None:
    sending, opening = await sockets.opened_by(p2p_url, sender, **OFFER)
    transfer = opening["transfer_id"]
    async with httpx.AsyncClient(base_url=p2p_url) as api:
        waiting = await api.post(f"/p2p/transfers/{transfer}/upload", headers=sender.headers)
        assert_problem(waiting, 409, "transfer_finished")
        await sockets.joined(p2p_url, sending, opening["code"])
        other = await register_account(
            api, f"p2p-{uuid.uuid4().hex[:12]}@example.com", engine=engine
        )
        for path in (f"/p2p/transfers/{transfer}/upload", f"/p2p/transfers/{uuid.uuid4()}/upload"):
            assert_problem(await api.post(path, headers=other.headers), 404, "transfer_not_found")
        assert_problem(
            await api.post(f"/p2p/transfers/{transfer}/stored"), 401, "not_authenticated"
        )
        bad = await api.post("/p2p/transfers/not-a-uuid/upload", headers=sender.headers)
        assert bad.status_code == 422


async def test_a_file_larger_than_the_fallback_takes_is_refused(
    sockets: Sockets, p2p_url: str, sender: Account
) -> None:
    sending, opening = await sockets.opened_by(p2p_url, sender, **{**OFFER, "size": 6 * 1024**3})
    await sockets.joined(p2p_url, sending, opening["code"])
    async with httpx.AsyncClient(base_url=p2p_url, headers=sender.headers) as api:
        answer = await api.post(f"/p2p/transfers/{opening['transfer_id']}/upload")
    assert_problem(answer, 413, "file_too_big")


async def test_the_sweeper_deletes_copies_nobody_will_fetch(
    sockets: Sockets,
    p2p_url: str,
    sender: Account,
    web: httpx.AsyncClient,
    storage: Storage,
    settings: Settings,
) -> None:
    sending, opening = await sockets.opened_by(p2p_url, sender, **OFFER)
    receiving, _ = await sockets.joined(p2p_url, sending, opening["code"])
    transfer = opening["transfer_id"]
    await _store(p2p_url, sender, web, transfer, confirm=False)
    key = storage_key(uuid.UUID(transfer))
    engine = create_engine(settings)
    try:
        sessionmaker = create_sessionmaker(engine)
        now = datetime.now(UTC)
        # Still uploading: kept.
        await sweep_transfers(sessionmaker, storage, now, now - timedelta(days=1))
        assert await storage.head(key) is not None
        # Past the transfer's time: it expires, and its copy goes.
        later = now + timedelta(days=1)
        expired, copies, _ = await sweep_transfers(sessionmaker, storage, later, now)
    finally:
        await engine.dispose()
    assert (expired, copies) == (1, 1)
    assert await storage.head(key) is None
    # Both peers are told.
    assert await refusal(receiving) == ("timeout", 4408)
    assert await refusal(sending) == ("timeout", 4408)
