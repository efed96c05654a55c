from datetime import datetime
from enum import StrEnum
from typing import Any
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
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, mapped_column

from dropp.core.db import Base, EnumText, created_at_column
from dropp.files.names import name_key


class NodeKind(StrEnum):
    FOLDER = "folder"
    FILE = "file"


class RevisionState(StrEnum):
    PENDING = "pending"
    COMPLETE = "complete"
    FAILED = "failed"
    EXPIRED = "expired"


def _name_key_of_insert(context: DefaultExecutionContext) -> str:
    # SQLAlchemy leaves get_current_parameters untyped; it returns the statement's values.
    parameters: dict[str, Any] = context.get_current_parameters()  # type: ignore[no-untyped-call]
    return name_key(parameters["name"])


class Node(Base):
    """A folder or a file in its owner's tree; top-level nodes have no parent."""

    __tablename__ = "node"
    __table_args__ = (
        # A name is unique among a folder's live children (trashed ones free their names),
        # compared by its folded key: "Report.pdf" and "report.PDF" are one name, as on the
        # desktops that sync them. Names are stored NFC-normalized, so "é" typed as one code
        # point or two is one name too.
        Index(
            "uq_node_top_level_name_key",
            "owner_id",
            "name_key",
            unique=True,
            postgresql_where="parent_id IS NULL AND trashed_at IS NULL",
        ),
        Index(
            "uq_node_child_name_key",
            "parent_id",
            "name_key",
            unique=True,
            postgresql_where="parent_id IS NOT NULL AND trashed_at IS NULL",
        ),
        Index("ix_node_owner_created", "owner_id", "created_at", "id"),
        CheckConstraint("name IS NFC NORMALIZED", name="name_nfc"),
        CheckConstraint("kind IN ('folder', 'file')", name="kind"),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    owner_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    parent_id: Mapped[UUID | None] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"))
    kind: Mapped[NodeKind] = mapped_column(EnumText(NodeKind))
    name: Mapped[str] = mapped_column(Text)
    # `names.name_key(name)`, computed in Python: PostgreSQL's lower() is not Unicode case
    # folding ("STRASSE" and "straße"), and its result would follow the database's collation.
    # Inserts that name the node get it by default; updates of `name` set it with the name.
    name_key: Mapped[str] = mapped_column(Text, default=_name_key_of_insert)
    # The newest complete revision: what downloads serve.
    current_revision_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("file_revision.id", ondelete="SET NULL", use_alter=True)
    )
    # The current revision's size, kept beside it so that a folder sorts by size in one
    # scan of its children rather than a probe into the revisions for each of them.
    size: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()
    # When the sweeper removes the file (FILE_EXPIRY_DAYS, or `expires_in` at upload).
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    # Set on every node of a trashed subtree, to the same moment; `trash_root` marks the node
    # the user deleted, which is what the trash lists and what a restore brings back. A node
    # trashed earlier on its own keeps its earlier time, so it is not restored with its parent.
    trashed_at: Mapped[datetime | None]
    trash_root: Mapped[bool] = mapped_column(default=False, server_default="false")


class FileRevision(Base):
    """One upload of a file's bytes: pending until storage proves it arrived."""

    __tablename__ = "file_revision"
    __table_args__ = (
        Index("ix_file_revision_node_created", "node_id", "created_at"),
        # The sweeper's scan: pending uploads by the end of their window.
        Index(
            "ix_file_revision_pending_expiry",
            "upload_expires_at",
            postgresql_where="state = 'pending'",
        ),
        CheckConstraint("state IN ('pending', 'complete', 'failed', 'expired')", name="state"),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    node_id: Mapped[UUID] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"))
    storage_key: Mapped[str] = mapped_column(Text, unique=True)
    declared_size: Mapped[int | None] = mapped_column(BigInteger)
    size: Mapped[int | None] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(Text)
    # What the client declared and storage verified: the file's SHA-256 for a single upload,
    # the hash of its parts' SHA-256s for a multipart one (see `content_hash`).
    sha256: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    # The device that made the revision, as the client named it (conflicted copies say it).
    device: Mapped[str | None] = mapped_column(Text)
    # Who started the upload when it was not the owner: an editor of a share. No foreign key:
    # the revision outlives that account.
    uploaded_by: Mapped[UUID | None] = mapped_column(Uuid)
    # The file request it came through, for an upload by someone holding its link.
    file_request_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("file_request.id", ondelete="SET NULL"), index=True
    )
    # What the upload said it replaces (`base_revision`) and how to settle a conflict with it.
    base_revision_id: Mapped[UUID | None] = mapped_column(Uuid)
    conflict_mode: Mapped[str | None] = mapped_column(String(16))
    # Multipart uploads only: storage's upload id, and the part size the client must use.
    multipart_upload_id: Mapped[str | None] = mapped_column(Text)
    part_size: Mapped[int | None] = mapped_column(BigInteger)
    # What this upload holds of its owner's quota while pending (the most it may store).
    reserved_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    etag: Mapped[str | None] = mapped_column(Text)
    # The storage version pinned at completion: later writes to the key never reach downloads.
    version_id: Mapped[str | None] = mapped_column(Text)
    state: Mapped[RevisionState] = mapped_column(
        EnumText(RevisionState), default=RevisionState.PENDING
    )
    created_at: Mapped[datetime] = created_at_column()
    upload_expires_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


class UploadPart(Base):
    """A part of a multipart upload whose SHA-256 the client declared: its URL is signed for
    that checksum, so storage refuses other bytes, and complete checks it again."""

    __tablename__ = "upload_part"

    revision_id: Mapped[UUID] = mapped_column(
        ForeignKey("file_revision.id", ondelete="CASCADE"), primary_key=True
    )
    part_number: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[bytes] = mapped_column(LargeBinary(32))


class NodeNameClash(Base):
    """A rename made when names started being compared by their folded key: of two live
    children of one folder whose names then meant the same name, the later one was renamed
    (`old_name` to `new_name`). Kept for the owner and the operator to see what changed."""

    __tablename__ = "node_name_clash"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, default=uuid4)
    node_id: Mapped[UUID] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    # The node that kept the name.
    kept_node_id: Mapped[UUID] = mapped_column(Uuid)
    old_name: Mapped[str] = mapped_column(Text)
    new_name: Mapped[str] = mapped_column(Text)
    renamed_at: Mapped[datetime] = created_at_column()
