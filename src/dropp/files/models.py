from datetime import datetime
from enum import StrEnum
from uuid import UUID, uuid4

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from dropp.core.db import Base, created_at_column


class NodeKind(StrEnum):
    FOLDER = "folder"
    FILE = "file"


class RevisionState(StrEnum):
    PENDING = "pending"
    COMPLETE = "complete"
    FAILED = "failed"
    EXPIRED = "expired"


class Node(Base):
    """A folder or a file in its owner's tree; top-level nodes have no parent."""

    __tablename__ = "node"
    __table_args__ = (
        # A name is unique among a folder's children; names are stored NFC-normalized, so
        # "é" typed as one code point or two is the same name.
        Index(
            "uq_node_top_level_name",
            "owner_id",
            "name",
            unique=True,
            postgresql_where="parent_id IS NULL",
        ),
        Index(
            "uq_node_child_name",
            "parent_id",
            "name",
            unique=True,
            postgresql_where="parent_id IS NOT NULL",
        ),
        Index("ix_node_owner_created", "owner_id", "created_at", "id"),
        CheckConstraint("name IS NFC NORMALIZED", name="name_nfc"),
        CheckConstraint("kind IN ('folder', 'file')", name="kind"),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    owner_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    parent_id: Mapped[UUID | None] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"))
    kind: Mapped[NodeKind] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text)
    # The newest complete revision: what downloads serve.
    current_revision_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("file_revision.id", ondelete="SET NULL", use_alter=True)
    )
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class FileRevision(Base):
    """One upload of a file's bytes: pending until storage proves it arrived."""

    __tablename__ = "file_revision"
    __table_args__ = (
        Index("ix_file_revision_node_created", "node_id", "created_at"),
        CheckConstraint("state IN ('pending', 'complete', 'failed', 'expired')", name="state"),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    node_id: Mapped[UUID] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"))
    storage_key: Mapped[str] = mapped_column(Text, unique=True)
    declared_size: Mapped[int | None] = mapped_column(BigInteger)
    size: Mapped[int | None] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(Text)
    sha256: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    etag: Mapped[str | None] = mapped_column(Text)
    # The storage version pinned at completion: later writes to the key never reach downloads.
    version_id: Mapped[str | None] = mapped_column(Text)
    state: Mapped[RevisionState] = mapped_column(String(16), default=RevisionState.PENDING)
    created_at: Mapped[datetime] = created_at_column()
    upload_expires_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
