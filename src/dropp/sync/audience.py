"""Who else sees a change to an owner's tree, through which share, and at which path.

A share with people (a grant) shows its node and everything under it to each verified, active
account it names (by address or by role), other than the owner, while the node is out of the
trash. The recipient sees it at `/<granted node's name>/<the rest below it>`. A recipient
reached by several grants covering one node gets one feed row per grant: each grant is a root
of its own on the recipient's side, told apart by `grant_id`.

Everything here only reads: `changes` writes the rows, under the feed locks.
"""

from collections.abc import Sequence
from dataclasses import replace
from typing import Any
from uuid import UUID

from sqlalchemy import TextClause, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.files import service as files_service
from dropp.files.models import FileRevision, Node, NodeKind
from dropp.sync.models import ChangeKind
from dropp.sync.rows import FeedRow, Placement

# The accounts each grant of `covering(id, grantee_email, grantee_role, ...)` applies to now.
# Two joins rather than one with OR, so the address is looked up in its unique index.
_ELIGIBLE = """
    account.email_verified_at IS NOT NULL AND account.is_active
    AND account.id <> CAST(:owner_id AS uuid)
"""
_AUDIENCE = f"""
    SELECT covering.*, account.id AS user_id
    FROM covering JOIN user_account AS account ON account.email = covering.grantee_email
    WHERE {_ELIGIBLE}
    UNION ALL
    SELECT covering.*, account.id AS user_id
    FROM covering JOIN user_account AS account ON account.role = covering.grantee_role
    WHERE {_ELIGIBLE}
"""


def _chain_audience(start: str) -> TextClause:
    # The node and its ancestors (depth 0 is the node), the owner's grants on any of them, and
    # for each grant the node's path as that grant's recipients see it. No ancestor of a
    # node a change is recorded for is in the trash (a live node never sits in a trashed
    # folder), and the node itself is either live or was until this very change.
    return text(
        f"""
        WITH RECURSIVE chain(id, parent_id, name, depth) AS (
            {start}
            UNION ALL
            SELECT node.id, node.parent_id, node.name, chain.depth + 1
            FROM node JOIN chain ON node.id = chain.parent_id
        ), covering AS (
            SELECT share_grant.id AS grant_id, share_grant.grantee_email,
                   share_grant.grantee_role,
                   (SELECT '/' || string_agg(below.name, '/' ORDER BY below.depth DESC)
                    FROM chain AS below WHERE below.depth <= chain.depth) AS path
            FROM share_grant JOIN chain ON share_grant.node_id = chain.id
            WHERE share_grant.owner_id = CAST(:owner_id AS uuid)
        )
        {_AUDIENCE}
        """
    )


CHAIN_NOW = _chain_audience(
    "SELECT id, parent_id, name, 0 FROM node WHERE id = CAST(:node_id AS uuid)"
)
CHAIN_BEFORE = _chain_audience(
    "SELECT CAST(:node_id AS uuid), CAST(:parent_id AS uuid), CAST(:name AS text), 0"
)

# Grants on nodes strictly inside the root that went to the trash with it (or came back with
# it): each grant node walks up until it meets the root. One short walk per grant of the
# owner, rather than a walk over everything the root holds. A grant node trashed earlier on
# its own keeps its earlier time, so its recipients heard of it then.
INSIDE_AUDIENCE = text(
    f"""
    WITH RECURSIVE up(grant_id, at) AS (
        SELECT share_grant.id, node.parent_id
        FROM share_grant JOIN node ON node.id = share_grant.node_id
        WHERE share_grant.owner_id = CAST(:owner_id AS uuid)
          AND share_grant.node_id <> CAST(:root_id AS uuid)
        UNION ALL
        SELECT up.grant_id, node.parent_id
        FROM up JOIN node ON node.id = up.at
        WHERE up.at <> CAST(:root_id AS uuid)
    ), covering AS (
        SELECT share_grant.id AS grant_id, share_grant.grantee_email, share_grant.grantee_role,
               node.id AS node_id, node.kind, '/' || node.name AS path,
               revision.id AS revision_id, revision.size, revision.sha256, revision.part_size
        FROM up
        JOIN share_grant ON share_grant.id = up.grant_id
        JOIN node ON node.id = share_grant.node_id
        JOIN node AS root ON root.id = CAST(:root_id AS uuid)
        LEFT JOIN file_revision AS revision ON revision.id = node.current_revision_id
        WHERE up.at = CAST(:root_id AS uuid)
          AND node.trashed_at IS NOT DISTINCT FROM root.trashed_at
    )
    {_AUDIENCE}
    """
)

RECIPIENTS_BY_EMAIL = text(
    f"SELECT account.id FROM user_account AS account "
    f"WHERE account.email = :grantee AND {_ELIGIBLE} ORDER BY account.id"
)
RECIPIENTS_BY_ROLE = text(
    f"SELECT account.id FROM user_account AS account "
    f"WHERE account.role = :grantee AND {_ELIGIBLE} ORDER BY account.id"
)

# The grants that apply to an account now, on nodes out of the trash, by id.
VISIBLE_GRANTS = text(
    """
    SELECT share_grant.id, share_grant.node_id
    FROM user_account AS account
    JOIN share_grant
      ON share_grant.grantee_email = account.email OR share_grant.grantee_role = account.role
    JOIN node ON node.id = share_grant.node_id
    WHERE account.id = CAST(:user_id AS uuid)
      AND account.email_verified_at IS NOT NULL AND account.is_active
      AND share_grant.owner_id <> account.id
      AND node.trashed_at IS NULL
      AND share_grant.id >= CAST(:from_id AS uuid)
    ORDER BY share_grant.id
    """
)

Key = tuple[UUID, UUID]  # (grant, recipient)


async def _audience(
    session: AsyncSession, owner_id: UUID, node_id: UUID, before: Placement | None
) -> dict[Key, str]:
    """Each (grant, recipient) that sees the node, with the path it sees: where the node is
    now, or with `before`, where it was."""
    if before is None:
        rows = await session.execute(CHAIN_NOW, {"owner_id": owner_id, "node_id": node_id})
    else:
        rows = await session.execute(
            CHAIN_BEFORE,
            {
                "owner_id": owner_id,
                "node_id": node_id,
                "parent_id": before.parent_id,
                "name": before.name,
            },
        )
    return {(row.grant_id, row.user_id): row.path for row in rows}


async def _revision_fields(session: AsyncSession, node_id: UUID) -> dict[str, Any]:
    """What a row names of the file's current revision (nothing for a folder)."""
    revision = await session.scalar(
        select(FileRevision)
        .join(Node, Node.current_revision_id == FileRevision.id)
        .where(Node.id == node_id)
    )
    if revision is None:
        return {}
    return {
        "revision_id": revision.id,
        "size": revision.size,
        "content_hash": files_service.content_hash(revision.sha256, revision.part_size),
    }


async def fan_out(
    session: AsyncSession, owner_id: UUID, owners: FeedRow, before: Placement | None
) -> list[FeedRow]:
    """The rows the owner's change `owners` brings the recipients of the grants covering
    its node. For a move, `before` is where the node was: recipients who now see it get
    `created`, who no longer see it `deleted` (at the path they knew), the others `moved`
    when their path changed."""
    now = await _audience(session, owner_id, owners.node_id, None)
    if owners.change != ChangeKind.MOVED or before is None:
        rows = [
            replace(owners, user_id=user_id, grant_id=grant_id, path=path)
            for (grant_id, user_id), path in now.items()
        ]
        if owners.node_kind == NodeKind.FOLDER and owners.change in (
            ChangeKind.DELETED,
            ChangeKind.RESTORED,
        ):
            rows += await _inside(session, owner_id, owners)
        return _ordered(rows)
    was = await _audience(session, owner_id, owners.node_id, before)
    rows = []
    arrived = [key for key in now if key not in was]
    # A folder arrives as its root only: the client lists the rest, as after a restore.
    revision = await _revision_fields(session, owners.node_id) if arrived else {}
    for grant_id, user_id in arrived:
        rows.append(
            FeedRow(
                user_id=user_id,
                node_id=owners.node_id,
                change=ChangeKind.CREATED,
                node_kind=owners.node_kind,
                path=now[grant_id, user_id],
                grant_id=grant_id,
                **revision,
            )
        )
    for (grant_id, user_id), path in now.items():
        if (grant_id, user_id) in was and was[grant_id, user_id] != path:
            rows.append(replace(owners, user_id=user_id, grant_id=grant_id, path=path))
    for (grant_id, user_id), path in was.items():
        if (grant_id, user_id) not in now:
            rows.append(
                FeedRow(
                    user_id=user_id,
                    node_id=owners.node_id,
                    change=ChangeKind.DELETED,
                    node_kind=owners.node_kind,
                    path=path,
                    grant_id=grant_id,
                )
            )
    return _ordered(rows)


def _ordered(rows: list[FeedRow]) -> list[FeedRow]:
    # A stable order, so a recipient covered by nested grants gets its rows the same way
    # every time.
    return sorted(rows, key=lambda row: (row.user_id, row.grant_id or row.user_id))


async def _inside(session: AsyncSession, owner_id: UUID, owners: FeedRow) -> list[FeedRow]:
    """A folder trashed or restored takes the shares inside it along: their recipients get
    the same change for each granted node, as the root they know it as."""
    rows = await session.execute(INSIDE_AUDIENCE, {"owner_id": owner_id, "root_id": owners.node_id})
    restored = owners.change == ChangeKind.RESTORED
    return [
        FeedRow(
            user_id=row.user_id,
            node_id=row.node_id,
            change=owners.change,
            node_kind=row.kind,
            path=row.path,
            revision_id=row.revision_id if restored else None,
            size=row.size if restored else None,
            content_hash=(
                files_service.content_hash(row.sha256, row.part_size) if restored else None
            ),
            grant_id=row.grant_id,
        )
        for row in rows
    ]


async def grant_recipients(
    session: AsyncSession,
    owner_id: UUID,
    grantee_email: str | None,
    grantee_role: str | None,
) -> list[UUID]:
    """The accounts a grant to this address or role applies to now, by id."""
    statement = RECIPIENTS_BY_EMAIL if grantee_email is not None else RECIPIENTS_BY_ROLE
    grantee = grantee_email if grantee_email is not None else grantee_role
    return list(await session.scalars(statement, {"grantee": grantee, "owner_id": owner_id}))


async def visible_grants(
    session: AsyncSession, user_id: UUID, from_id: UUID
) -> Sequence[tuple[UUID, UUID]]:
    """(grant, node) of every grant that applies to the account now, from `from_id` on."""
    rows = await session.execute(VISIBLE_GRANTS, {"user_id": user_id, "from_id": from_id})
    return [(row.id, row.node_id) for row in rows]
