"""Shares with people: the grants an owner makes, changes and removes, and what they give the
people they apply to (the rules themselves are in `access`)."""

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID, uuid4

from sqlalchemy import Select, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from dropp.auth.models import User
from dropp.auth.service import normalize_email
from dropp.core.config import Settings
from dropp.core.pagination import Columns, CursorError, encode_cursor, newest_first
from dropp.events import service as events_service
from dropp.events.models import EventKind
from dropp.files import locks, tree
from dropp.files import service as files_service
from dropp.files.errors import FileNotFound, FolderNotFound, InvalidCursor, NotAFolder
from dropp.files.models import Node, NodeKind, RevisionState
from dropp.files.names import existing_path_names, name_key
from dropp.roles.policy import ADMIN
from dropp.sharing import access
from dropp.sharing.models import ShareGrant
from dropp.sharing.people_errors import (
    GrantNotFound,
    RoleShareAdminOnly,
    ShareWithSelf,
    UnknownRole,
)
from dropp.sharing.people_schemas import (
    GrantCreate,
    GrantPage,
    GrantRead,
    GrantUpdate,
    SharedChildrenPage,
    SharedPage,
    SharedRead,
)
from dropp.sync import audience
from dropp.sync import shared as shared_feed
from dropp.sync.changes import lock_grants

# --- the owner's side ---------------------------------------------------------------------------


async def _reads(session: AsyncSession, rows: Sequence[tuple[ShareGrant, Node]]) -> list[GrantRead]:
    paths = await files_service.folder_paths(
        session, {node.parent_id for _, node in rows if node.parent_id is not None}
    )
    return [
        GrantRead(
            id=grant.id,
            node_id=node.id,
            kind=node.kind,
            name=node.name,
            path=f"{paths[node.parent_id] if node.parent_id else ''}/{node.name}",
            in_trash=node.trashed_at is not None,
            grantee_email=grant.grantee_email,
            grantee_role=grant.grantee_role,
            permission=grant.permission,
            note=grant.note,
            created_at=grant.created_at,
            updated_at=grant.updated_at,
        )
        for grant, node in rows
    ]


async def _read(session: AsyncSession, grant: ShareGrant) -> GrantRead:
    node = await session.get_one(Node, grant.node_id)
    return (await _reads(session, [(grant, node)]))[0]


async def _owned_live_node(session: AsyncSession, owner_id: UUID, body: GrantCreate) -> Node:
    if body.file_id is not None:
        node = await session.scalar(files_service.live_node(owner_id, body.file_id, NodeKind.FILE))
        if node is None:
            raise FileNotFound("There is no such file.")
        return node
    assert body.folder_id is not None
    node = await session.scalar(files_service.live_node(owner_id, body.folder_id, NodeKind.FOLDER))
    if node is None:
        raise FolderNotFound("There is no such folder.")
    return node


async def _require_role_sharer(session: AsyncSession, settings: Settings, owner_id: UUID) -> None:
    """Refuse a share with a whole role (made or changed) unless the owner may: it pushes the
    item and its note into every account of the role."""
    if settings.role_shares_by == "everyone":
        return
    # The role as it is now, not as the access token says: a demoted admin is refused at once.
    role = await session.scalar(select(User.role).where(User.id == owner_id))
    if role != ADMIN:
        raise RoleShareAdminOnly(
            "Only an admin can share with a whole role; share with people's addresses instead."
        )


async def create_grant(
    session: AsyncSession, settings: Settings, owner_id: UUID, body: GrantCreate
) -> tuple[GrantRead, bool]:
    """Share the owner's live node with an address or a role; returns the grant and whether
    it is new. The same grantee on the same node again updates that grant instead."""
    if body.role is not None and body.role not in settings.role_names:
        raise UnknownRole(
            f"There is no role {body.role!r} on this server.", roles=list(settings.role_names)
        )
    if body.role is not None:
        await _require_role_sharer(session, settings, owner_id)
    email = normalize_email(body.email) if body.email is not None else None
    if email is not None and email == await session.scalar(
        select(User.email).where(User.id == owner_id)
    ):
        raise ShareWithSelf("That is your own address: share with someone else.")
    # Shared, so the node cannot move or go to the trash before the grant (and the feed rows
    # it brings its recipients) is written; uploads are not held up.
    await locks.share_tree(session, owner_id)
    node = await _owned_live_node(session, owner_id, body)
    statement = insert(ShareGrant).values(
        id=uuid4(),
        owner_id=owner_id,
        node_id=node.id,
        grantee_email=email,
        grantee_role=body.role,
        permission=body.permission,
        note=body.note,
    )
    if email is not None:
        statement = statement.on_conflict_do_nothing(
            index_elements=[ShareGrant.node_id, ShareGrant.grantee_email],
            index_where=ShareGrant.grantee_email.is_not(None),
        )
    else:
        statement = statement.on_conflict_do_nothing(
            index_elements=[ShareGrant.node_id, ShareGrant.grantee_role],
            index_where=ShareGrant.grantee_role.is_not(None),
        )
    grantee = (
        ShareGrant.grantee_email == email
        if email is not None
        else ShareGrant.grantee_role == body.role
    )
    while True:
        grant = await session.scalar(statement.returning(ShareGrant))
        if grant is not None:
            await shared_feed.grant_added(session, grant)
            read = await _read(session, grant)
            await _announce_grant(session, grant, read)
            return read, True
        existing = await session.scalar(
            select(ShareGrant).where(ShareGrant.node_id == node.id, grantee).with_for_update()
        )
        if existing is not None:
            break
        # Removed by a concurrent request after the insert met it: insert again.
    existing.permission = body.permission
    if body.note is not None:
        existing.note = body.note
    existing.updated_at = datetime.now(UTC)
    await session.flush()
    return await _read(session, existing), False


async def _announce_grant(session: AsyncSession, grant: ShareGrant, read: GrantRead) -> None:
    """Tell the event streams of everyone a new grant applies to. Last in its transaction:
    their feed locks are the ones `grant_added` already holds."""
    recipients = await audience.grant_recipients(
        session, grant.owner_id, grant.grantee_email, grant.grantee_role
    )
    owner = await session.scalar(select(User.email).where(User.id == grant.owner_id))
    await events_service.record(
        session,
        recipients,
        EventKind.SHARE,
        {
            "share_id": str(grant.id),
            "owner": owner,
            "name": read.name,
            "kind": read.kind,
            "role": grant.permission,
        },
    )


async def list_grants(
    session: AsyncSession,
    owner_id: UUID,
    *,
    node_id: UUID | None,
    cursor: str | None,
    limit: int,
) -> GrantPage:
    """The owner's grants, newest first; only those on `node_id` when given."""
    query = (
        select(ShareGrant, Node)
        .join(Node, Node.id == ShareGrant.node_id)
        .where(ShareGrant.owner_id == owner_id)
    )
    if node_id is not None:
        query = query.where(ShareGrant.node_id == node_id)
    query = _newest_first(query, cursor, limit)
    rows = [(grant, node) for grant, node in await session.execute(query)]
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1][0]
        next_cursor = encode_cursor(last.created_at, last.id)
    return GrantPage(grants=await _reads(session, page), next_cursor=next_cursor)


async def _owned_grant(session: AsyncSession, owner_id: UUID, grant_id: UUID) -> ShareGrant:
    grant = await session.scalar(
        select(ShareGrant)
        .where(ShareGrant.id == grant_id, ShareGrant.owner_id == owner_id)
        .with_for_update()
    )
    if grant is None:
        raise GrantNotFound("There is no such share.")
    return grant


async def update_grant(
    session: AsyncSession, settings: Settings, owner_id: UUID, grant_id: UUID, body: GrantUpdate
) -> GrantRead:
    """Change a grant's permission or note; its recipients' next request sees the change."""
    grant = await _owned_grant(session, owner_id, grant_id)
    if grant.grantee_role is not None:
        await _require_role_sharer(session, settings, owner_id)
    if body.permission is not None:
        grant.permission = body.permission
    if "note" in body.model_fields_set:
        grant.note = body.note
    grant.updated_at = datetime.now(UTC)
    await session.flush()
    return await _read(session, grant)


async def delete_grant(session: AsyncSession, owner_id: UUID, grant_id: UUID) -> None:
    """Remove a grant: what it gave is gone from its recipients' next request."""
    # The grants lock before the grant's row, the order tree changes take them in as they
    # record (the sweeper purging the shared file at this moment, say), so neither waits on
    # the other in a cycle.
    await lock_grants(session, owner_id)
    grant = await _owned_grant(session, owner_id, grant_id)
    await shared_feed.grant_removed(session, grant)
    await session.execute(
        delete(ShareGrant)
        .where(ShareGrant.id == grant.id)
        .execution_options(synchronize_session=False)
    )


# --- the recipient's side -----------------------------------------------------------------------


def _newest_first(query: Select[*Columns], cursor: str | None, limit: int) -> Select[*Columns]:
    try:
        return newest_first(query, ShareGrant.created_at, ShareGrant.id, cursor, limit)
    except CursorError as error:
        raise InvalidCursor("The cursor is not one this server issued.") from error


async def shared_with(
    session: AsyncSession, user_id: UUID, *, cursor: str | None, limit: int
) -> SharedPage:
    """The grants that apply to the account, newest first, each as the item it shares."""
    owner = aliased(User, name="owner")
    query = (
        access.grants_of(user_id)
        .join(owner, owner.id == ShareGrant.owner_id)
        .add_columns(owner.email)
    )
    query = _newest_first(query, cursor, limit)
    rows = list(await session.execute(query))
    page = rows[:limit]
    nodes = [node for _, node, _ in page]
    revisions = await files_service.shown_revisions(
        session, [node.id for node in nodes if node.kind == NodeKind.FILE]
    )
    # Another grant over the same node (on a folder above it, say) may give more.
    accesses = await access.shared_accesses(session, user_id, [node.id for node in nodes])
    items = []
    for grant, node, owner_email in page:
        revision = revisions.get(node.id)
        file_fields = {}
        if revision is not None:
            complete = revision.state == RevisionState.COMPLETE
            file_fields = {
                "size": revision.size if complete else revision.declared_size,
                "content_type": revision.content_type,
                "status": revision.state,
                "revision_id": revision.id,
            }
        items.append(
            SharedRead(
                grant_id=grant.id,
                node_id=node.id,
                kind=node.kind,
                name=node.name,
                path=f"/{node.name}",
                permission=accesses[node.id].permission,
                owner_email=owner_email,
                note=grant.note,
                shared_at=grant.created_at,
                **file_fields,
            )
        )
    next_cursor = None
    if len(rows) > limit:
        last = page[-1][0]
        next_cursor = encode_cursor(last.created_at, last.id)
    return SharedPage(items=items, next_cursor=next_cursor)


async def shared_children(
    session: AsyncSession,
    user_id: UUID,
    grant_id: UUID,
    path: str,
    *,
    cursor: str | None,
    limit: int,
) -> SharedChildrenPage:
    """The children of a folder inside a shared folder, `path` being relative to it (`/` is
    the shared folder itself); paths as the recipient sees them."""
    grant, root = await access.applying_grant(session, user_id, grant_id)
    if root.kind != NodeKind.FOLDER:
        raise NotAFolder("This share is a file: it has no items.")
    try:
        names = existing_path_names(path)
    except ValueError as error:
        raise FolderNotFound(f"There is no folder {path} in this share: {error}.") from error
    shown = "/" + "/".join([root.name, *names])
    folder_id = root.id
    for name in names:
        child = await session.scalar(
            select(Node.id).where(
                Node.owner_id == grant.owner_id,
                Node.parent_id == folder_id,
                Node.name_key == name_key(name),
                Node.kind == NodeKind.FOLDER,
                Node.trashed_at.is_(None),
            )
        )
        if child is None:
            raise FolderNotFound(f"There is no folder {shown} in this share.")
        folder_id = child
    here = await access.shared_access(session, user_id, folder_id)
    assert here is not None
    page = await tree.list_children(session, grant.owner_id, folder_id, cursor=cursor, limit=limit)
    return SharedChildrenPage(
        grant_id=grant.id,
        path=shown,
        permission=here.permission,
        items=[{**item, "path": f"{shown}/{item['name']}"} for item in page.items],
        next_cursor=page.next_cursor,
    )
