from datetime import datetime
from enum import StrEnum
from uuid import UUID, uuid4

from sqlalchemy import BigInteger, ForeignKey, Identity, Index, LargeBinary, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from dropp.core.db import Base, EnumText, created_at_column


class TransferState(StrEnum):
    WAITING = "waiting"  # for a receiver to join with the code
    JOINED = "joined"  # the peers are connecting
    TRANSFERRING = "transferring"  # bytes are moving, peer to peer
    FALLBACK = "fallback"  # the sender is uploading to storage
    STORED = "stored"  # storage holds the file for the receiver
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"


FINISHED = (TransferState.DONE, TransferState.FAILED, TransferState.EXPIRED)


class Via(StrEnum):
    P2P = "p2p"
    CLOUD = "cloud"


class Transfer(Base):
    """One file offered by a signed-in sender to whoever joins with its code, once."""

    __tablename__ = "p2p_transfer"
    __table_args__ = (
        # An account's unfinished transfers, counted at every open.
        Index("ix_p2p_transfer_sender_state", "sender_id", "state"),
        Index("ix_p2p_transfer_expires_at", "expires_at"),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    sender_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    # HMAC-SHA256 of the code's digits: the table never holds a code that could be used.
    code_digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    file_name: Mapped[str] = mapped_column(Text)
    file_size: Mapped[int] = mapped_column(BigInteger)
    file_sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    state: Mapped[TransferState] = mapped_column(
        EnumText(TransferState), default=TransferState.WAITING
    )
    via: Mapped[Via | None] = mapped_column(EnumText(Via))
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = created_at_column()
    # Until a receiver joins: the code's end. After: the end of the whole transfer, the
    # cloud fallback's stored copy included.
    expires_at: Mapped[datetime]
    joined_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class TransferMessage(Base):
    """A signaling message on its way to one peer: the peers' sockets may be served by two
    API processes, and the row (with a NOTIFY naming the transfer) is how it crosses."""

    __tablename__ = "p2p_message"
    __table_args__ = (Index("ix_p2p_message_transfer_id_to", "transfer_id", "to_peer", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    transfer_id: Mapped[UUID] = mapped_column(ForeignKey("p2p_transfer.id", ondelete="CASCADE"))
    to_peer: Mapped[str] = mapped_column(String(8))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
