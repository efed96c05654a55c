"""Sync conflicts: an upload that says which revision it replaces (`base_revision`), judged
against the file's current revision when it completes, under the file's row lock."""

from datetime import date
from enum import StrEnum
from itertools import count
from uuid import UUID, uuid4

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.files import service as files_service
from dropp.files.models import FileRevision, Node, NodeKind
from dropp.files.names import MAX_NAME_BYTES, normalize_existing_name
from dropp.files.revision_errors import RevisionConflict

UNNAMED_DEVICE = "another device"
# What every conflicted copy's name holds, for those who show them as such.
CONFLICT_MARK = " (conflicted copy "


class ConflictMode(StrEnum):
    KEEP_BOTH = "keep_both"
    OVERWRITE = "overwrite"
    FAIL = "fail"


def is_stale(current_revision_id: UUID | None, base_revision_id: UUID | None) -> bool:
    """Whether a write based on `base_revision_id` would replace something its client never saw.

    No base is no opinion (last writer wins); a file with no complete revision yet has nothing
    to lose.
    """
    return (
        base_revision_id is not None
        and current_revision_id is not None
        and current_revision_id != base_revision_id
    )


async def check_at_init(
    session: AsyncSession,
    owner_id: UUID,
    parent_id: UUID | None,
    name: str,
    base_revision_id: UUID | None,
    mode: ConflictMode,
) -> None:
    """The early answer for `fail`: 409 before any bytes are sent. Complete decides again."""
    if base_revision_id is None or mode != ConflictMode.FAIL:
        return
    current = await files_service.current_revision_at(session, owner_id, parent_id, name)
    if current is not None and is_stale(current.id, base_revision_id):
        raise conflict_error(RevisionConflict, current.id)


def conflict_error(kind: type[RevisionConflict], current_revision_id: UUID) -> RevisionConflict:
    return kind(
        f"The file changed since the revision you based this upload on; its current revision is "
        f"{current_revision_id}. Download it, or upload again with `conflict: keep_both` or "
        "`overwrite`.",
        current_revision=str(current_revision_id),
    )


def _split_extension(name: str) -> tuple[str, str]:
    # ".bashrc" is all name; "archive.tar.gz" keeps ".gz", as desktop sync clients do.
    dot = name.rfind(".")
    if dot <= 0:
        return name, ""
    return name[:dot], name[dot:]


def conflicted_copy_name(name: str, device: str | None, on: date, attempt: int = 1) -> str:
    """`report (conflicted copy laptop 2026-11-21).pdf`; from the second attempt on, with
    ` 2`, ` 3`... before the closing parenthesis."""
    stem, extension = _split_extension(name)
    number = f" {attempt}" if attempt > 1 else ""
    label = f"{CONFLICT_MARK}{device or UNNAMED_DEVICE} {on.isoformat()}{number})"
    room = MAX_NAME_BYTES - len((label + extension).encode())
    # A long name loses the end of its stem, never the label or the extension.
    stem = stem.encode()[: max(room, 1)].decode(errors="ignore") or "_"
    # Made from a stored name, which earlier rules may have let in: only the rules every
    # stored name meets apply.
    return normalize_existing_name(stem + label + extension)


async def move_to_conflicted_copy(
    session: AsyncSession, node: Node, revision: FileRevision, on: date
) -> UUID:
    """Create the conflicted copy beside `node` and move the upload's revision to it; returns
    the copy's id. Another transaction taking a name first only moves this one to the next."""
    copy_id: UUID | None = None
    attempt = count(1)
    while copy_id is None:
        copy_id = await session.scalar(
            insert(Node)
            .values(
                id=uuid4(),
                owner_id=node.owner_id,
                parent_id=node.parent_id,
                kind=NodeKind.FILE,
                name=conflicted_copy_name(node.name, revision.device, on, next(attempt)),
                expires_at=node.expires_at,
            )
            .on_conflict_do_nothing()
            .returning(Node.id)
        )
    revision.node_id = copy_id
    await session.flush()
    return copy_id


async def set_sync_details(
    session: AsyncSession,
    revision_id: UUID,
    *,
    device: str | None,
    base_revision_id: UUID | None,
    mode: ConflictMode,
) -> None:
    """Record who uploads and what the upload replaces, for complete to judge; nothing to
    record (no device, no base) costs no statement."""
    if device is None and base_revision_id is None:
        return
    await session.execute(
        update(FileRevision)
        .where(FileRevision.id == revision_id)
        .values(
            device=device,
            base_revision_id=base_revision_id,
            conflict_mode=mode.value if base_revision_id is not None else None,
        )
        .execution_options(synchronize_session=False)
    )
