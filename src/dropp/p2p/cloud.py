"""The cloud fallback: the sender's file through storage, under the transfer's own key, for
the one receiver that joined; deleted once it is received, or by the sweeper."""

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from dropp.core.config import Settings
from dropp.p2p import service
from dropp.p2p.errors import FileTooBigForCloud, NotStored, TransferFinished, TransferNotFound
from dropp.p2p.models import FINISHED, Transfer, TransferState
from dropp.p2p.schemas import CloudUpload
from dropp.storage.s3 import Storage, b64_sha256

CONTENT_TYPE = "application/octet-stream"
# The receiver's link: one receiver, fetching at once.
DOWNLOAD_URL_SECONDS = service.DOWNLOAD_SECONDS


async def _senders(session: AsyncSession, sender_id: UUID, transfer_id: UUID) -> Transfer:
    transfer = await service.get(session, transfer_id)
    # Another's transfer is one that does not exist.
    if transfer is None or transfer.sender_id != sender_id:
        raise TransferNotFound("You have no transfer with this id.")
    if transfer.state in FINISHED:
        raise TransferFinished(f"The transfer has ended ({transfer.state}).")
    if transfer.state == TransferState.WAITING:
        raise TransferFinished("Nobody has joined yet: there is no one to send it to.")
    return transfer


async def upload_form(
    session: AsyncSession, storage: Storage, settings: Settings, sender_id: UUID, transfer_id: UUID
) -> CloudUpload:
    transfer = await _senders(session, sender_id, transfer_id)
    if transfer.file_size > settings.p2p_cloud_max_bytes:
        raise FileTooBigForCloud(
            f"The file is larger than the {settings.p2p_cloud_max_bytes} bytes this server "
            "stores for a transfer: only a direct connection can carry it."
        )
    form = await storage.presign_post(
        service.storage_key(transfer.id),
        min_size=transfer.file_size,
        max_size=transfer.file_size,
        content_type=CONTENT_TYPE,
        expires_in=settings.p2p_cloud_upload_seconds,
        sha256=transfer.file_sha256,
    )
    await service.move_on(session, transfer.id, TransferState.FALLBACK)
    return CloudUpload(
        url=form.url, fields=form.fields, expires_in=settings.p2p_cloud_upload_seconds
    )


async def confirm_stored(
    session: AsyncSession, storage: Storage, sender_id: UUID, transfer_id: UUID
) -> None:
    """Check that storage holds the declared file, then hand the receiver its link."""
    transfer = await _senders(session, sender_id, transfer_id)
    key = service.storage_key(transfer.id)
    held = await storage.head(key, checksum=True)
    if (
        held is None
        or held.size != transfer.file_size
        or held.checksum_sha256 != b64_sha256(transfer.file_sha256)
    ):
        raise NotStored("Storage does not hold the declared file for this transfer: upload it.")
    url = await storage.presign_get(
        key,
        version_id=held.version_id,
        filename=transfer.file_name,
        content_type=CONTENT_TYPE,
        expires_in=DOWNLOAD_URL_SECONDS,
    )
    await service.move_on(session, transfer.id, TransferState.STORED)
    await service.send(
        session,
        transfer.id,
        "receiver",
        {"type": "download", "url": url, "expires_in": DOWNLOAD_URL_SECONDS},
    )
    await service.send(session, transfer.id, "sender", {"type": "stored"})
