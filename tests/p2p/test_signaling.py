"""The signaling protocol of docs/p2p.md, spoken over real sockets, abuse included."""

import re
import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.core.config import Settings
from tests.helpers import Account, register_account, serve_dropp
from tests.p2p.conftest import OFFER, Sockets, hear, refusal, say


async def _state(engine: AsyncEngine, transfer_id: str) -> tuple[str, str | None]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT state, via FROM p2p_transfer WHERE id = :id"), {"id": transfer_id}
            )
        ).one()
    return row.state, row.via


async def test_two_peers_are_introduced_and_only_relayed_to_each_other(
    sockets: Sockets, p2p_url: str, sender: Account, engine: AsyncEngine
) -> None:
    sending, opening = await sockets.opened_by(p2p_url, sender)
    assert re.fullmatch(r"\d{4}-\d{4}-\d{4}", opening["code"])
    assert opening["ice_servers"] == []
    # Typed as people write it down.
    typed = opening["code"].replace("-", " ")
    receiving, joining = await sockets.joined(p2p_url, sending, typed)
    assert joining["file"] == OFFER
    assert joining["transfer_id"] == opening["transfer_id"]

    offer = {"sdp": {"type": "offer", "sdp": "v=0 ..."}}
    await say(sending, {"type": "signal", "data": offer})
    assert await hear(receiving) == {"type": "signal", "from": "sender", "data": offer}
    answer = {"sdp": {"type": "answer", "sdp": "v=0 ..."}}
    await say(receiving, {"type": "signal", "data": answer})
    assert await hear(sending) == {"type": "signal", "from": "receiver", "data": answer}
    await say(receiving, {"type": "progress", "bytes": 11})
    assert await hear(sending) == {"type": "progress", "from": "receiver", "bytes": 11}

    await say(receiving, {"type": "done", "via": "p2p", "sha256": OFFER["sha256"]})
    assert await hear(sending) == {"type": "done", "via": "p2p", "sha256": OFFER["sha256"]}
    for socket in (sending, receiving):
        await socket.wait_closed()
        assert socket.close_code == 1000
    assert await _state(engine, opening["transfer_id"]) == ("done", "p2p")


async def test_a_peer_cannot_say_who_it_is(sockets: Sockets, p2p_url: str, sender: Account) -> None:
    sending, opening = await sockets.opened_by(p2p_url, sender)
    receiving, _ = await sockets.joined(p2p_url, sending, opening["code"])
    await say(receiving, {"type": "signal", "from": "sender", "data": {}})
    assert await refusal(receiving) == ("malformed", 4400)
    # The sender hears that its peer is gone.
    assert await refusal(sending) == ("peer_left", 4410)


async def test_a_used_code_lets_no_third_peer_in(
    sockets: Sockets, p2p_url: str, sender: Account
) -> None:
    sending, opening = await sockets.opened_by(p2p_url, sender)
    await sockets.joined(p2p_url, sending, opening["code"])
    third = await sockets.connect(p2p_url)
    await say(third, {"type": "join", "code": opening["code"]})
    assert await refusal(third) == ("unknown_code", 4404)


@pytest.mark.parametrize("code", ["0000-0000-0000", "12", "abcd-efgh-ijkl", "1" * 41])
async def test_a_wrong_code_is_refused(sockets: Sockets, p2p_url: str, code: str) -> None:
    socket = await sockets.connect(p2p_url)
    await say(socket, {"type": "join", "code": code})
    expected = ("malformed", 4400) if len(code) > 40 else ("unknown_code", 4404)
    assert await refusal(socket) == expected


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ("not json", ("malformed", 4400)),
        ("[1, 2]", ("malformed", 4400)),
        ('{"type": "hello"}', ("malformed", 4400)),
        ('{"type": "join"}', ("malformed", 4400)),
        ('{"type": "join", "code": 5}', ("malformed", 4400)),
        (b"\x00binary", ("malformed", 4400)),
        ('{"type": "join", "code": "' + "1" * 9000 + '"}', ("too_big", 1009)),
    ],
)
async def test_malformed_or_oversized_first_messages_close_with_a_reason(
    sockets: Sockets, p2p_url: str, frame: str | bytes, expected: tuple[str, int]
) -> None:
    socket = await sockets.connect(p2p_url)
    await socket.send(frame)
    assert await refusal(socket) == expected


@pytest.mark.parametrize(
    ("offer", "code"),
    [
        ({"name": "a/b.txt"}, "invalid_name"),
        ({"name": ""}, "invalid_name"),
        ({"name": "CON"}, "invalid_name"),
        ({"size": -1}, "malformed"),
        ({"sha256": "xyz"}, "malformed"),
    ],
)
async def test_an_offer_is_checked_as_uploads_are(
    sockets: Sockets, p2p_url: str, sender: Account, offer: dict[str, object], code: str
) -> None:
    socket = await sockets.connect(p2p_url)
    await say(socket, {"type": "open", "token": sender.access_token, "file": {**OFFER, **offer}})
    assert await refusal(socket) == (code, 4400)


async def test_opening_needs_a_valid_token(sockets: Sockets, p2p_url: str) -> None:
    socket = await sockets.connect(p2p_url)
    await say(socket, {"type": "open", "token": "forged", "file": OFFER})
    assert await refusal(socket) == ("not_authenticated", 4401)


async def test_an_oversized_signal_closes_the_socket(
    sockets: Sockets, p2p_url: str, sender: Account
) -> None:
    sending, opening = await sockets.opened_by(p2p_url, sender)
    receiving, _ = await sockets.joined(p2p_url, sending, opening["code"])
    await say(sending, {"type": "signal", "data": {"sdp": "x" * 9000}})
    assert await refusal(sending) == ("too_big", 1009)
    assert await refusal(receiving) == ("peer_left", 4410)


async def test_nothing_is_relayed_before_someone_joins(
    sockets: Sockets, p2p_url: str, sender: Account
) -> None:
    sending, _ = await sockets.opened_by(p2p_url, sender)
    await say(sending, {"type": "signal", "data": {}})
    assert await refusal(sending) == ("not_allowed", 4403)


async def test_only_the_receiver_says_done(sockets: Sockets, p2p_url: str, sender: Account) -> None:
    sending, opening = await sockets.opened_by(p2p_url, sender)
    await sockets.joined(p2p_url, sending, opening["code"])
    await say(sending, {"type": "done", "via": "p2p", "sha256": OFFER["sha256"]})
    assert await refusal(sending) == ("not_allowed", 4403)


async def test_a_sender_holds_a_few_transfers_at_most(
    sockets: Sockets, p2p_url: str, sender: Account
) -> None:
    held = [await sockets.opened_by(p2p_url, sender) for _ in range(3)]
    socket = await sockets.connect(p2p_url)
    await say(socket, {"type": "open", "token": sender.access_token, "file": OFFER})
    assert await refusal(socket) == ("too_many_transfers", 4429)
    # One cancelled frees a place.
    await held[0][0].close()
    await sockets.settled()
    again, _ = await sockets.opened_by(p2p_url, sender)
    await again.close()


async def test_a_sender_leaving_ends_its_code(
    sockets: Sockets, p2p_url: str, sender: Account, engine: AsyncEngine
) -> None:
    sending, opening = await sockets.opened_by(p2p_url, sender)
    await sending.close()
    await sockets.settled()
    assert await _state(engine, opening["transfer_id"]) == ("failed", None)
    receiving = await sockets.connect(p2p_url)
    await say(receiving, {"type": "join", "code": opening["code"]})
    assert await refusal(receiving) == ("unknown_code", 4404)


async def test_guessing_codes_is_rate_limited(
    sockets: Sockets, settings: Settings, engine: AsyncEngine
) -> None:
    with serve_dropp(settings, name="dropp-p2p-rate-limit", p2p_join_rate="3/minute") as url:
        for _ in range(3):
            guess = await sockets.connect(url)
            await say(guess, {"type": "join", "code": "1234-5678-9012"})
            assert await refusal(guess) == ("unknown_code", 4404)
        guess = await sockets.connect(url)
        await say(guess, {"type": "join", "code": "1234-5678-9012"})
        assert await refusal(guess) == ("rate_limited", 4429)


async def test_peers_on_two_api_processes_reach_each_other(
    sockets: Sockets, p2p_url: str, settings: Settings, engine: AsyncEngine
) -> None:
    with serve_dropp(settings, name="dropp-p2p-second") as second_url:
        async with httpx.AsyncClient(base_url=p2p_url, timeout=30) as api:
            account = await register_account(
                api, f"p2p-{uuid.uuid4().hex[:12]}@example.com", engine=engine
            )
        sending, opening = await sockets.opened_by(p2p_url, account)
        receiving, _ = await sockets.joined(second_url, sending, opening["code"])
        await say(sending, {"type": "signal", "data": {"ice": None}})
        assert await hear(receiving) == {"type": "signal", "from": "sender", "data": {"ice": None}}
        await say(receiving, {"type": "done", "via": "p2p", "sha256": OFFER["sha256"]})
        assert (await hear(sending))["type"] == "done"
