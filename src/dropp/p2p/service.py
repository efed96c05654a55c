"""Transfers in the database: opening, joining, their states, and the messages between their
peers. Every state a sender should see also goes to its event stream."""

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.core.config import Settings
from dropp.events import service as events
from dropp.events.models import EventKind
from dropp.p2p import codes
from dropp.p2p.errors import TooManyTransfers
from dropp.p2p.models import FINISHED, Transfer, TransferMessage, TransferState, Via
from dropp.p2p.schemas import FileOffer

CHANNEL = "dropp_p2p"
NOTIFY = text("SELECT pg_notify(:channel, CAST(CAST(:transfer_id AS uuid) AS text))")
# How long a joined transfer may take, on top of the fallback's upload window: the receiver's
# download of the stored copy.
DOWNLOAD_SECONDS = 300
CODE_ATTEMPTS = 8
STORAGE_PREFIX = "p2p/"


def storage_key(transfer_id: UUID) -> str:
    """Apart from uploads' `u/`: the sweeper's scan of uploads never meets these."""
    return f"{STORAGE_PREFIX}{transfer_id}"


def _unfinished() -> Any:
    return Transfer.state.not_in(FINISHED)


async def open_transfer(
    session: AsyncSession, settings: Settings, key: bytes, sender_id: UUID, offer: FileOffer
) -> tuple[Transfer, str]:
    """A new transfer waiting for its receiver, and its code (known only to the caller)."""
    now = datetime.now(UTC)
    open_now = await session.scalar(
        select(func.count())
        .select_from(Transfer)
        .where(Transfer.sender_id == sender_id, _unfinished(), Transfer.expires_at > now)
    )
    if (open_now or 0) >= settings.p2p_max_open_transfers:
        raise TooManyTransfers(
            f"You have {open_now} transfers under way; finish or cancel one first.",
            headers={"Retry-After": str(settings.outage_retry_after_seconds)},
        )
    for _ in range(CODE_ATTEMPTS):
        code = codes.new_code()
        transfer = await session.scalar(
            pg_insert(Transfer)
            .values(
                sender_id=sender_id,
                code_digest=codes.digest(key, code),
                file_name=offer.name,
                file_size=offer.size,
                file_sha256=bytes.fromhex(offer.sha256),
                expires_at=now + timedelta(seconds=settings.p2p_code_ttl_seconds),
            )
            .on_conflict_do_nothing(index_elements=[Transfer.code_digest])
            .returning(Transfer)
        )
        if transfer is not None:
            await _tell_sender(session, transfer)
            return transfer, code
    # 10^12 codes: eight collisions in a row mean the table is full of them, or broken.
    raise RuntimeError("no free transfer code after several attempts")


async def join(
    session: AsyncSession, settings: Settings, key: bytes, typed: str
) -> Transfer | None:
    """Take the transfer this code opens, once; None for a code that opens nothing now."""
    if codes.normalize(typed) is None:
        return None
    now = datetime.now(UTC)
    lasts = settings.p2p_code_ttl_seconds + settings.p2p_cloud_upload_seconds + DOWNLOAD_SECONDS
    transfer = await session.scalar(
        update(Transfer)
        .where(
            Transfer.code_digest == codes.digest(key, typed),
            Transfer.state == TransferState.WAITING,
            Transfer.expires_at > now,
        )
        .values(
            state=TransferState.JOINED,
            joined_at=now,
            expires_at=now + timedelta(seconds=lasts),
        )
        .returning(Transfer)
    )
    if transfer is not None:
        await _tell_sender(session, transfer)
    return transfer


async def get(session: AsyncSession, transfer_id: UUID) -> Transfer | None:
    return await session.get(Transfer, transfer_id, populate_existing=True)


async def move_on(
    session: AsyncSession,
    transfer_id: UUID,
    state: TransferState,
    *,
    via: Via | None = None,
    bytes_done: int | None = None,
) -> Transfer | None:
    """Put an unfinished transfer in `state`; None if it had already finished."""
    values: dict[str, Any] = {"state": state}
    if via is not None:
        values["via"] = via
    if bytes_done is not None:
        values["bytes_done"] = bytes_done
    if state in FINISHED:
        values["finished_at"] = datetime.now(UTC)
    transfer = await session.scalar(
        update(Transfer)
        .where(Transfer.id == transfer_id, _unfinished())
        .values(**values)
        .returning(Transfer)
        .execution_options(populate_existing=True)
    )
    if transfer is not None:
        await _tell_sender(session, transfer)
    return transfer


async def _tell_sender(session: AsyncSession, transfer: Transfer) -> None:
    await events.record(
        session,
        [transfer.sender_id],
        EventKind.TRANSFER,
        {
            "transfer_id": str(transfer.id),
            "name": transfer.file_name,
            "state": transfer.state,
            "bytes": transfer.bytes_done,
            "size": transfer.file_size,
            "via": transfer.via,
        },
    )


async def send(
    session: AsyncSession, transfer_id: UUID, to_peer: str, message: dict[str, Any]
) -> None:
    """Queue `message` for the peer `to_peer` ("sender" or "receiver") of this transfer,
    wherever its socket is served; it is delivered once this commits."""
    await session.execute(
        insert(TransferMessage).values(
            transfer_id=transfer_id, to_peer=to_peer, body=json.dumps(message)
        )
    )
    await session.execute(NOTIFY, {"channel": CHANNEL, "transfer_id": transfer_id})


async def take(session: AsyncSession, transfer_id: UUID, peer: str) -> list[dict[str, Any]]:
    """The messages waiting for `peer`, oldest first, removed as they are taken."""
    taken = await session.execute(
        delete(TransferMessage)
        .where(TransferMessage.transfer_id == transfer_id, TransferMessage.to_peer == peer)
        .returning(TransferMessage.id, TransferMessage.body)
    )
    return [json.loads(body) for _, body in sorted(taken.all())]


async def record_progress(session: AsyncSession, transfer_id: UUID, bytes_done: int) -> None:
    """Bytes moved so far; a joined transfer is now transferring (a fallback stays one)."""
    transfer = await session.scalar(
        update(Transfer)
        .where(Transfer.id == transfer_id, _unfinished())
        .values(
            bytes_done=bytes_done,
            state=func.coalesce(
                func.nullif(Transfer.state, TransferState.JOINED.value),
                TransferState.TRANSFERRING.value,
            ),
        )
        .returning(Transfer)
        .execution_options(populate_existing=True)
    )
    if transfer is not None:
        await _tell_sender(session, transfer)


async def expire_overdue(session: AsyncSession, now: datetime, limit: int) -> int:
    """End up to `limit` unfinished transfers past their time, telling their sockets;
    returns how many."""
    overdue = (
        await session.scalars(
            select(Transfer.id)
            .where(_unfinished(), Transfer.expires_at <= now)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for transfer_id in overdue:
        await move_on(session, transfer_id, TransferState.EXPIRED)
        for peer in ("sender", "receiver"):
            await send(session, transfer_id, peer, {"type": "expired"})
    return len(overdue)


async def keys_in_use(session: AsyncSession, transfer_ids: Sequence[UUID]) -> set[UUID]:
    """Which of these transfers may still need their stored copy: the sender is uploading
    it, or the receiver has yet to fetch it."""
    found = await session.scalars(
        select(Transfer.id).where(
            Transfer.id.in_(transfer_ids),
            Transfer.state.in_((TransferState.FALLBACK, TransferState.STORED)),
        )
    )
    return set(found)


async def delete_finished(session: AsyncSession, before: datetime, limit: int) -> int:
    """Forget up to `limit` transfers that finished before `before` (their messages go with
    them); returns how many."""
    claimed = (
        select(Transfer.id)
        .where(Transfer.finished_at < before)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    deleted = await session.scalars(
        delete(Transfer).where(Transfer.id.in_(claimed)).returning(Transfer.id)
    )
    return len(deleted.all())
