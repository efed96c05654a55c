"""The rules of shares with people, in one place for every feature that asks.

A grant applies to an account when the account's address equals `grantee_email`, or its role
equals `grantee_role`; and only while that address is verified, the account is active and is
not the grant's owner, and the granted node is out of the trash. It covers the node and
everything under it; where several grants cover a node, the strongest permission wins.

Everything here reads the database on every call, never the caller's token: a grant changed
or removed by its owner, an address verified or a role changed takes effect on the next
request.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import ColumnElement, Integer, Select, and_, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from dropp.auth.models import User
from dropp.files.models import Node
from dropp.sharing.models import Permission, ShareGrant
from dropp.sharing.people_errors import GrantNotFound, ShareReadOnly

STRENGTH = {Permission.VIEWER: 1, Permission.EDITOR: 2}


def strongest(permissions: Iterable[Permission]) -> Permission:
    return max(permissions, key=STRENGTH.__getitem__)


def applies() -> ColumnElement[bool]:
    """The grant applies to the account: for a query that has both `ShareGrant` and `User`."""
    return and_(
        User.email_verified_at.is_not(None),
        User.is_active.is_(True),
        User.id != ShareGrant.owner_id,
        or_(ShareGrant.grantee_email == User.email, ShareGrant.grantee_role == User.role),
    )


def grants_of(user_id: UUID) -> Select[ShareGrant, Node]:
    """The grants that apply to the account, each with its node (never a trashed one)."""
    return (
        select(ShareGrant, Node)
        .join(Node, and_(Node.id == ShareGrant.node_id, Node.trashed_at.is_(None)))
        .join(User, User.id == user_id)
        .where(applies())
    )


async def recipient_ids(session: AsyncSession, grant_id: UUID) -> list[UUID]:
    """The accounts the grant applies to now, whatever the state of its node."""
    rows = await session.scalars(
        select(User.id).join(ShareGrant, ShareGrant.id == grant_id).where(applies())
    )
    return list(rows)


async def applying_grant(
    session: AsyncSession, user_id: UUID, grant_id: UUID
) -> tuple[ShareGrant, Node]:
    """The grant with its node, if it applies to the account; GrantNotFound otherwise."""
    found = (await session.execute(grants_of(user_id).where(ShareGrant.id == grant_id))).first()
    if found is None:
        raise GrantNotFound("There is no such share.")
    grant, node = found
    return grant, node


@dataclass(frozen=True, slots=True)
class SharedAccess:
    """What an account may do with someone else's node, and through which grant."""

    node_id: UUID
    owner_id: UUID
    permission: Permission
    # The grant access goes through: the one giving the strongest permission, the nearest to
    # the node among those, then the oldest, so the answer is stable from call to call.
    grant_id: UUID
    grant_node_id: UUID
    # The node as the account sees it: `/<granted node's name>/<the rest below it>`.
    path: str


def _ancestry(node_ids: Sequence[UUID]) -> Select[UUID, UUID, str, int]:
    """Each live node with its live ancestors: (start_id, node_id, name, depth), depth 0 being
    the node itself."""
    chain = (
        select(
            Node.id.label("start_id"),
            Node.id.label("node_id"),
            Node.parent_id.label("parent_id"),
            Node.name.label("name"),
            literal(0, Integer).label("depth"),
        )
        .where(Node.id.in_(node_ids), Node.trashed_at.is_(None))
        .cte("chain", recursive=True)
    )
    above = aliased(Node)
    chain = chain.union_all(
        select(chain.c.start_id, above.id, above.parent_id, above.name, chain.c.depth + 1).where(
            above.id == chain.c.parent_id, above.trashed_at.is_(None)
        )
    )
    return select(chain.c.start_id, chain.c.node_id, chain.c.name, chain.c.depth)


@dataclass(frozen=True, slots=True)
class _Covering:
    depth: int
    grant_id: UUID
    owner_id: UUID
    node_id: UUID
    permission: Permission
    created_at: datetime


async def shared_accesses(
    session: AsyncSession, user_id: UUID, node_ids: Sequence[UUID]
) -> dict[UUID, SharedAccess]:
    """For each of these nodes that a grant gives the account, what it gives; nodes the
    account reaches through no grant (its own among them) are left out. One query."""
    if not node_ids:
        return {}
    ancestry = _ancestry(node_ids).subquery("ancestry")
    applying = (
        select(
            ShareGrant.id,
            ShareGrant.node_id,
            ShareGrant.owner_id,
            ShareGrant.permission,
            ShareGrant.created_at,
        )
        .join(User, User.id == user_id)
        .where(applies())
        .subquery("applying")
    )
    rows = await session.execute(
        select(
            ancestry.c.start_id,
            ancestry.c.name,
            ancestry.c.depth,
            applying.c.id,
            applying.c.owner_id,
            applying.c.node_id,
            applying.c.permission,
            applying.c.created_at,
        )
        .select_from(ancestry)
        .outerjoin(applying, applying.c.node_id == ancestry.c.node_id)
    )
    names: dict[UUID, dict[int, str]] = defaultdict(dict)
    covering: dict[UUID, list[_Covering]] = defaultdict(list)
    for row in rows:
        names[row.start_id][row.depth] = row.name
        if row.id is not None:
            covering[row.start_id].append(
                _Covering(
                    depth=row.depth,
                    grant_id=row.id,
                    owner_id=row.owner_id,
                    node_id=row.node_id,
                    permission=Permission(row.permission),
                    created_at=row.created_at,
                )
            )
    accesses = {}
    for start_id, grants in covering.items():
        best = min(
            grants,
            key=lambda g: (-STRENGTH[g.permission], g.depth, g.created_at, g.grant_id),
        )
        chain = names[start_id]
        accesses[start_id] = SharedAccess(
            node_id=start_id,
            owner_id=best.owner_id,
            permission=best.permission,
            grant_id=best.grant_id,
            grant_node_id=best.node_id,
            path="/" + "/".join(chain[depth] for depth in range(best.depth, -1, -1)),
        )
    return accesses


async def shared_access(session: AsyncSession, user_id: UUID, node_id: UUID) -> SharedAccess | None:
    """What grants give the account on this live node; None if nothing (or it is its own)."""
    return (await shared_accesses(session, user_id, [node_id])).get(node_id)


async def grant_owner(session: AsyncSession, grant_id: UUID) -> UUID:
    """Whose the granted node is, to lock that tree before access is checked under the lock;
    GrantNotFound if there is no such grant."""
    owner_id = await session.scalar(select(ShareGrant.owner_id).where(ShareGrant.id == grant_id))
    if owner_id is None:
        raise GrantNotFound("There is no such share.")
    return owner_id


async def editable_node(session: AsyncSession, user_id: UUID, grant_id: UUID) -> Node:
    """The granted node, if the grant applies to the account and it may change what is
    there: GrantNotFound if not its grant, ShareReadOnly if it may only look."""
    _, node = await applying_grant(session, user_id, grant_id)
    access = await shared_access(session, user_id, node.id)
    assert access is not None
    if access.permission != Permission.EDITOR:
        raise ShareReadOnly(
            "This share lets you view and download only; ask its owner for `editor` access "
            "to upload."
        )
    return node
