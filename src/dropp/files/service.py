"""The per-user tree of folders and files, and the revisions that hold a file's bytes."""

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

from sqlalchemy import (
    ColumnElement,
    Select,
    TextClause,
    and_,
    delete,
    func,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from dropp.core.pagination import CursorError, encode_cursor, newest_first
from dropp.events import service as events_service
from dropp.events.models import EventKind
from dropp.files.errors import FileNotFound, FolderNotFound, InvalidCursor, NameTaken, NotAFolder
from dropp.files.models import FileRevision, Node, NodeKind, RevisionState, UploadPart
from dropp.files.names import name_key
from dropp.files.schemas import FilePage, FileRead, StatusFilter
from dropp.observability.metrics import UPLOADS_ENDED
from dropp.quotas import service as quotas_service
from dropp.storage.s3 import Storage
from dropp.sync import changes
from dropp.sync.models import ChangeKind


@dataclass(frozen=True, slots=True)
class PendingRevision:
    id: UUID
    file_id: UUID


@dataclass(frozen=True, slots=True)
class NewRevision:
    storage_key: str
    declared_size: int | None
    content_type: str
    upload_expires_at: datetime


def _sibling(owner_id: UUID, parent_id: UUID | None, name: str) -> ColumnElement[bool]:
    parent = Node.parent_id.is_(None) if parent_id is None else Node.parent_id == parent_id
    # Trashed nodes have given up their names; "Report.pdf" finds "report.pdf".
    return and_(
        Node.owner_id == owner_id,
        parent,
        Node.name_key == name_key(name),
        Node.trashed_at.is_(None),
    )


async def _find_child(
    session: AsyncSession, owner_id: UUID, parent_id: UUID | None, name: str
) -> Node | None:
    return await session.scalar(select(Node).where(_sibling(owner_id, parent_id, name)))


async def find_folder(session: AsyncSession, owner_id: UUID, names: Sequence[str]) -> UUID | None:
    """The id of the folder at `names` (None for the top level); FolderNotFound if absent."""
    parent_id: UUID | None = None
    for name in names:
        child = await _find_child(session, owner_id, parent_id, name)
        if child is None or child.kind != NodeKind.FOLDER:
            raise FolderNotFound(f"There is no folder /{'/'.join(names)}.")
        parent_id = child.id
    return parent_id


async def ensure_folder(session: AsyncSession, owner_id: UUID, names: Sequence[str]) -> UUID | None:
    """Like `mkdir -p`: the folder at `names`, created with its parents where missing."""
    folder_id, _ = await make_folders(session, owner_id, names)
    return folder_id


async def make_folders(
    session: AsyncSession, owner_id: UUID, names: Sequence[str]
) -> tuple[UUID | None, bool]:
    """`ensure_folder`, also telling whether the last folder was created now. Each folder
    created goes into the change feed."""
    parent_id: UUID | None = None
    created_last = False
    # The path as stored: an existing "Photos" keeps its case when "/photos/2026" is asked for.
    path = ""
    for name in names:
        created = await session.scalar(
            insert(Node)
            .values(
                id=uuid4(), owner_id=owner_id, parent_id=parent_id, kind=NodeKind.FOLDER, name=name
            )
            .on_conflict_do_nothing()
            .returning(Node.id)
        )
        created_last = created is not None
        if created is None:
            existing = await _find_child(session, owner_id, parent_id, name)
            if existing is None or existing.kind != NodeKind.FOLDER:
                shown = existing.name if existing is not None else name
                raise NotAFolder(f"{path}/{shown} is a file, so it cannot hold other files.")
            created = existing.id
            path += f"/{existing.name}"
        else:
            path += f"/{name}"
            await changes.record(
                session,
                user_id=owner_id,
                node_id=created,
                change=ChangeKind.CREATED,
                node_kind=NodeKind.FOLDER,
                path=path,
            )
        parent_id = created
    return parent_id, created_last


def _pending_revision_sql(parent_matches: str) -> TextClause:
    # One round trip for the hot path of every upload: create the file node unless the name is
    # taken, then add the revision to whichever node holds the name. Written once as SQL, so no
    # statement is built per request.
    return text(
        f"""
        WITH inserted AS (
            INSERT INTO node (id, owner_id, parent_id, kind, name, name_key)
            VALUES (CAST(:node_id AS uuid), CAST(:owner_id AS uuid), CAST(:parent_id AS uuid),
                    'file', :name, :name_key)
            ON CONFLICT DO NOTHING
            RETURNING id, kind
        ), target AS (
            SELECT id, kind FROM inserted
            UNION ALL
            SELECT id, kind FROM node
            WHERE owner_id = CAST(:owner_id AS uuid) AND {parent_matches}
              AND name_key = :name_key AND trashed_at IS NULL
        )
        INSERT INTO file_revision
            (id, node_id, storage_key, declared_size, content_type, state, upload_expires_at)
        SELECT CAST(:revision_id AS uuid), id, :storage_key, CAST(:declared_size AS bigint),
               :content_type, 'pending', CAST(:upload_expires_at AS timestamptz)
        FROM target WHERE kind = 'file' LIMIT 1
        RETURNING node_id
        """
    )


ADD_TOP_LEVEL_REVISION = _pending_revision_sql("parent_id IS NULL")
ADD_CHILD_REVISION = _pending_revision_sql("parent_id = CAST(:parent_id AS uuid)")


async def add_pending_revision(
    session: AsyncSession,
    owner_id: UUID,
    parent_id: UUID | None,
    name: str,
    revision: NewRevision,
) -> PendingRevision:
    """A pending revision of the file at (parent, name), creating the file if it is new."""
    revision_id = uuid4()
    statement = ADD_TOP_LEVEL_REVISION if parent_id is None else ADD_CHILD_REVISION
    node_id: UUID | None = await session.scalar(
        statement,
        {
            "node_id": uuid4(),
            "owner_id": owner_id,
            "parent_id": parent_id,
            "name": name,
            "name_key": name_key(name),
            "revision_id": revision_id,
            "storage_key": revision.storage_key,
            "declared_size": revision.declared_size,
            "content_type": revision.content_type,
            "upload_expires_at": revision.upload_expires_at,
        },
    )
    if node_id is None:
        # The name is a folder, or another transaction created the file after this statement's
        # snapshot was taken; a fresh read tells which.
        existing = await _find_child(session, owner_id, parent_id, name)
        if existing is None or existing.kind != NodeKind.FILE:
            raise NameTaken(f"A folder named {name!r} is already there.")
        node_id = existing.id
        session.add(
            FileRevision(
                id=revision_id,
                node_id=node_id,
                storage_key=revision.storage_key,
                declared_size=revision.declared_size,
                content_type=revision.content_type,
                upload_expires_at=revision.upload_expires_at,
            )
        )
        await session.flush()
    return PendingRevision(id=revision_id, file_id=node_id)


async def lock_revision(
    session: AsyncSession, owner_id: UUID, file_id: UUID, revision_id: UUID | None
) -> FileRevision | None:
    """The file's named revision, else its newest pending one, else its newest; locked.

    The file row is locked before the revision, the order deletion takes them in, so a
    completion racing a deletion waits instead of deadlocking.
    """
    node = await session.scalar(
        select(Node)
        .where(Node.id == file_id, Node.owner_id == owner_id, Node.kind == NodeKind.FILE)
        .with_for_update()
    )
    if node is None:
        return None
    query = select(FileRevision).where(FileRevision.node_id == node.id)
    if revision_id is not None:
        query = query.where(FileRevision.id == revision_id)
    else:
        query = query.order_by(
            (FileRevision.state == RevisionState.PENDING).desc(), FileRevision.created_at.desc()
        )
    return await session.scalar(query.limit(1).with_for_update())


async def count_pending(session: AsyncSession, file_id: UUID) -> int:
    pending = await session.scalar(
        select(func.count()).where(
            FileRevision.node_id == file_id, FileRevision.state == RevisionState.PENDING
        )
    )
    return pending or 0


async def complete_revision(
    session: AsyncSession,
    revision: FileRevision,
    *,
    size: int,
    etag: str,
    version_id: str | None,
    content_type: str | None,
) -> None:
    """Record what storage holds and make this revision the one downloads serve."""
    now = datetime.now(UTC)
    revision.state = RevisionState.COMPLETE
    revision.size = size
    revision.etag = etag
    revision.version_id = version_id
    revision.content_type = content_type or revision.content_type
    revision.completed_at = now
    node = await session.get(Node, revision.node_id)
    assert node is not None
    first = node.current_revision_id is None
    node.current_revision_id = revision.id
    node.size = size
    node.updated_at = now
    await session.flush()
    # Quota: the upload's reservation gives way to the bytes storage actually holds.
    await quotas_service.settle_revision(session, revision, kept=size)
    if node.trashed_at is not None:
        # Not in the live tree: the feed said `deleted` when it went, and says `restored`
        # with this revision if it comes back.
        await _announce_upload(session, node, revision)
        return
    await changes.record(
        session,
        user_id=node.owner_id,
        node_id=node.id,
        change=ChangeKind.CREATED if first else ChangeKind.UPDATED,
        node_kind=node.kind,
        path=await node_path(session, node),
        revision_id=revision.id,
        size=size,
        content_hash=content_hash(revision.sha256, revision.part_size),
    )
    await _announce_upload(session, node, revision)


async def fail_revision(session: AsyncSession, revision: FileRevision, found_size: int) -> None:
    """Record that storage held `found_size` bytes, not what was declared."""
    revision.state = RevisionState.FAILED
    revision.size = found_size
    revision.completed_at = datetime.now(UTC)
    await session.flush()
    await quotas_service.settle_revision(session, revision)
    await _announce_upload(session, None, revision)


async def expire_revision(session: AsyncSession, revision: FileRevision) -> None:
    revision.state = RevisionState.EXPIRED
    revision.completed_at = datetime.now(UTC)
    await session.flush()
    await quotas_service.settle_revision(session, revision)
    await _announce_upload(session, None, revision)


async def _announce_upload(
    session: AsyncSession, node: Node | None, revision: FileRevision
) -> None:
    """Tell the owner's event streams, and the uploader's if an editor uploaded, that an
    upload ended. Last in its transaction: it takes their feed locks (events.service)."""
    if node is None:
        node = await session.get(Node, revision.node_id)
        assert node is not None
    UPLOADS_ENDED.labels(revision.state).inc()
    recipients = [node.owner_id]
    if revision.uploaded_by is not None:
        recipients.append(revision.uploaded_by)
    await events_service.record(
        session,
        recipients,
        EventKind.UPLOAD,
        {
            "upload_id": str(revision.id),
            "file_id": str(node.id),
            "name": node.name,
            "state": revision.state,
            "size": revision.size,
        },
    )


async def set_upload_details(
    session: AsyncSession,
    revision_id: UUID,
    *,
    sha256: bytes | None,
    multipart_upload_id: str | None,
    part_size: int | None,
) -> None:
    """What an upload declared beyond its size: its hash, and for multipart its storage id."""
    await session.execute(
        update(FileRevision)
        .where(FileRevision.id == revision_id)
        .values(sha256=sha256, multipart_upload_id=multipart_upload_id, part_size=part_size)
        .execution_options(synchronize_session=False)
    )


async def current_revision_at(
    session: AsyncSession, owner_id: UUID, parent_id: UUID | None, name: str
) -> FileRevision | None:
    """The complete revision the file at (parent, name) serves, if there is such a file."""
    return await session.scalar(
        select(FileRevision)
        .join(Node, Node.current_revision_id == FileRevision.id)
        .where(_sibling(owner_id, parent_id, name), Node.kind == NodeKind.FILE)
    )


async def discard_revision(session: AsyncSession, revision: FileRevision) -> bool:
    """Delete a revision that never became the file's (cancelled, or a duplicate upload);
    returns whether the file has other revisions left."""
    await quotas_service.settle_revision(session, revision)
    await session.execute(
        delete(FileRevision)
        .where(FileRevision.id == revision.id)
        .execution_options(synchronize_session=False)
    )
    remaining = await session.scalar(
        select(func.count()).where(FileRevision.node_id == revision.node_id)
    )
    return bool(remaining)


async def record_part_hashes(
    session: AsyncSession, revision_id: UUID, hashes: dict[int, bytes]
) -> dict[int, bytes]:
    """Record the parts' SHA-256s where none is recorded yet; returns every recorded one of
    these parts, so the caller can refuse a part whose hash would change."""
    if hashes:
        await session.execute(
            insert(UploadPart)
            .values(
                [
                    {"revision_id": revision_id, "part_number": n, "sha256": digest}
                    for n, digest in hashes.items()
                ]
            )
            .on_conflict_do_nothing()
        )
    return await part_hashes(session, revision_id, numbers=list(hashes))


async def part_hashes(
    session: AsyncSession, revision_id: UUID, *, numbers: list[int] | None = None
) -> dict[int, bytes]:
    query = select(UploadPart.part_number, UploadPart.sha256).where(
        UploadPart.revision_id == revision_id
    )
    if numbers is not None:
        query = query.where(UploadPart.part_number.in_(numbers))
    return {row.part_number: row.sha256 for row in await session.execute(query)}


async def forget_stored(session: AsyncSession, storage: Storage, keys: Sequence[str]) -> None:
    """Commit the deletion of rows, then delete the bytes they held: a crash in between
    leaves only unreferenced objects (the sweeper's), never rows pointing at nothing."""
    await session.commit()
    for key in keys:
        await storage.delete(key)


def live_node(owner_id: UUID, node_id: UUID, kind: NodeKind) -> Select[Node]:
    """The owner's node of this kind, unless it is in the trash: another user's id, like a
    trashed one, finds nothing."""
    return select(Node).where(
        Node.id == node_id,
        Node.owner_id == owner_id,
        Node.kind == kind,
        Node.trashed_at.is_(None),
    )


async def get_file(session: AsyncSession, owner_id: UUID, file_id: UUID) -> Node:
    """The caller's live file; FileNotFound for anything else, including another user's file
    and a file in the trash."""
    node = await session.scalar(live_node(owner_id, file_id, NodeKind.FILE))
    if node is None:
        raise FileNotFound("There is no such file.")
    return node


async def set_expiry(session: AsyncSession, file_id: UUID, expires_at: datetime) -> None:
    """When the sweeper removes the file; each upload sets it anew."""
    await session.execute(update(Node).where(Node.id == file_id).values(expires_at=expires_at))


async def get_current_revision(session: AsyncSession, node: Node) -> FileRevision | None:
    if node.current_revision_id is None:
        return None
    return await session.get(FileRevision, node.current_revision_id)


async def announce_deletion(session: AsyncSession, node: Node) -> None:
    """The feed entry saying `node` is gone from where it is now: for its owner and everyone
    who sees it through a share. Call it before the row goes, in the same transaction."""
    await changes.record(
        session,
        user_id=node.owner_id,
        node_id=node.id,
        change=ChangeKind.DELETED,
        node_kind=node.kind,
        path=await node_path(session, node),
    )


async def delete_file(session: AsyncSession, node: Node) -> list[str]:
    """Delete the file and its revisions; returns the storage keys to delete once committed."""
    # The file row first, the order completion takes; then each revision is deleted in the
    # state it has at that moment, which is what the owner's quota gives back.
    await session.execute(select(Node.id).where(Node.id == node.id).with_for_update())
    if node.current_revision_id is not None and node.trashed_at is None:
        # A trashed file's deletion was in the feed when it went to the trash.
        await announce_deletion(session, node)
    removed = (
        await session.execute(
            delete(FileRevision)
            .where(FileRevision.node_id == node.id)
            .returning(
                FileRevision.storage_key,
                FileRevision.state,
                FileRevision.size,
            )
            .execution_options(synchronize_session=False)
        )
    ).all()
    await session.execute(delete(Node).where(Node.id == node.id))
    await quotas_service.settle(
        session,
        node.owner_id,
        kept=-sum(row.size or 0 for row in removed if row.state == RevisionState.COMPLETE),
    )
    return [row.storage_key for row in removed]


@functools.cache
def _listing() -> tuple[Select[Node, FileRevision], type[FileRevision]]:
    """Files with the revision that represents them: the current one, else the newest upload.

    Built once: statements are immutable, and building this one cost more than running it.
    """
    candidate = aliased(FileRevision)
    representative = (
        select(candidate)
        .where(candidate.node_id == Node.id)
        .order_by((candidate.id == Node.current_revision_id).desc(), candidate.created_at.desc())
        .limit(1)
        .lateral("shown")
    )
    shown = aliased(FileRevision, representative)
    query = select(Node, shown).join(representative, true()).where(Node.kind == NodeKind.FILE)
    return query, shown


async def shown_revisions(session: AsyncSession, file_ids: list[UUID]) -> dict[UUID, FileRevision]:
    """The revision each of these files shows in listings: its current one, else its newest
    upload."""
    if not file_ids:
        return {}
    query, _ = _listing()
    rows = await session.execute(query.where(Node.id.in_(file_ids)))
    return {node.id: revision for node, revision in rows}


async def node_path(session: AsyncSession, node: Node) -> str:
    """The node's absolute path, such as /reports/2026/q1.pdf."""
    parent_path = ""
    if node.parent_id is not None:
        parent_path = (await folder_paths(session, {node.parent_id}))[node.parent_id]
    return f"{parent_path}/{node.name}"


async def folder_paths(session: AsyncSession, folder_ids: set[UUID]) -> dict[UUID, str]:
    """`/a/b` for each folder id, walking up the tree in one query."""
    if not folder_ids:
        return {}
    rows = await session.execute(
        text(
            """
            WITH RECURSIVE chain(start_id, parent_id, name, depth) AS (
                SELECT id, parent_id, name, 0 FROM node WHERE id = ANY(:ids)
                UNION ALL
                SELECT chain.start_id, node.parent_id, node.name, chain.depth + 1
                FROM chain JOIN node ON node.id = chain.parent_id
            )
            SELECT start_id, string_agg(name, '/' ORDER BY depth DESC) FROM chain GROUP BY start_id
            """
        ),
        {"ids": list(folder_ids)},
    )
    return {start_id: "/" + joined for start_id, joined in rows}


def content_hash(sha256: bytes | None, part_size: int | None) -> str | None:
    """A self-describing hash: `sha256:<hex>` of the bytes, or for a multipart upload
    `sha256-parts-<part size>:<hex>` of its parts' SHA-256s (see the README)."""
    if sha256 is None:
        return None
    scheme = "sha256" if part_size is None else f"sha256-parts-{part_size}"
    return f"{scheme}:{sha256.hex()}"


def _read(node: Node, revision: FileRevision, parent_path: str) -> FileRead:
    complete = revision.state == RevisionState.COMPLETE
    return FileRead(
        file_id=node.id,
        name=node.name,
        path=f"{parent_path}/{node.name}",
        size=revision.size if complete else revision.declared_size,
        content_type=revision.content_type,
        status=revision.state,
        revision_id=revision.id,
        content_hash=content_hash(revision.sha256, revision.part_size) if complete else None,
        created_at=node.created_at,
        updated_at=node.updated_at,
        expires_at=node.expires_at,
    )


async def _reads(
    session: AsyncSession, rows: Sequence[tuple[Node, FileRevision]]
) -> list[FileRead]:
    parents = {node.parent_id for node, _ in rows if node.parent_id is not None}
    paths = await folder_paths(session, parents)
    return [
        _read(node, revision, paths[node.parent_id] if node.parent_id else "")
        for node, revision in rows
    ]


async def read_file(session: AsyncSession, file_id: UUID) -> FileRead:
    """A file's metadata; the caller has already checked who owns it."""
    query, _ = _listing()
    found, revision = (await session.execute(query.where(Node.id == file_id))).one()
    return (await _reads(session, [(found, revision)]))[0]


async def list_files(
    session: AsyncSession,
    owner_id: UUID,
    *,
    status: StatusFilter,
    folder_id: UUID | None,
    in_folder: bool,
    cursor: str | None,
    limit: int,
) -> FilePage:
    """The owner's files, newest first; only those directly in `folder_id` when `in_folder`."""
    query, shown = _listing()
    query = query.where(Node.owner_id == owner_id, Node.trashed_at.is_(None))
    if in_folder:
        query = query.where(
            Node.parent_id.is_(None) if folder_id is None else Node.parent_id == folder_id
        )
    if status != StatusFilter.ALL:
        query = query.where(shown.state == status.value)
    try:
        query = newest_first(query, Node.created_at, Node.id, cursor, limit)
    except CursorError as error:
        raise InvalidCursor("The cursor is not one this server issued.") from error
    rows = [(node, revision) for node, revision in await session.execute(query)]
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1][0]
        next_cursor = encode_cursor(last.created_at, last.id)
    return FilePage(files=await _reads(session, page), next_cursor=next_cursor)
