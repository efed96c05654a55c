"""Recording the change feed: every change to a user's tree adds one row to that user's feed,
and one to the feed of every account that sees the node through a share, in the same
transaction as the change; and wakes those users' long-polls through PostgreSQL NOTIFY (which
PostgreSQL delivers only if that transaction commits, to every API process listening).

Locks, in the order they are taken:

1. The owner's account row (FOR NO KEY UPDATE, the lock quotas already take after the file
   row), then the owner's *grants lock*, shared. Adding or removing a grant takes the grants
   lock exclusively (`shared.grant_added`), so a change and a new or removed grant never miss
   each other: whichever commits second sees the other.
2. The *feed lock* of every user the change writes to, all in one statement, in key order. Ids
   come from one global sequence and transactions commit in any order, so a reader could pass
   an id whose transaction commits later; holding the feed lock from before the ids are drawn
   until commit makes each user's rows commit in id order, so a cursor never skips one.

The feed lock is an advisory lock of its own rather than the recipients' account rows: those
are held by the recipients' own uploads (their quota) until they commit, so two users sharing
with each other (or with one role) who upload at once would each hold their own row and wait
for the other's. Only feed writes take feed locks, each write all of its own at once in one
order, and the rows' foreign keys take only KEY SHARE on the recipients' accounts, which
their quota updates do not block. One transaction recording several changes whose
recipients differ could still take a lower key after a higher one; PostgreSQL's deadlock
detector would then end one of two such transactions. No change recorded today does that:
the folders one request creates share one chain of grants.
"""

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.sync import audience
from dropp.sync.models import Change, ChangeKind
from dropp.sync.rows import FeedRow, Placement

NOTIFY_CHANNEL = "dropp_changes"
# "FEED" and "SHRG": the first keys of the advisory locks; the second is the user's, hashed
# as `locks.lock_tree` hashes it.
FEED_LOCK_NAMESPACE = 0x46454544
GRANTS_LOCK_NAMESPACE = 0x53485247

_USER_KEY = "hashtext(CAST(CAST(:user_id AS uuid) AS text))"

# The row first, then the grants lock: only the transaction holding the row can hold the
# grants lock through it, so a grant waiting for that lock never has another change of this
# owner queued behind it while holding the row.
LOCK_OWNER = text(
    f"""
    WITH account AS MATERIALIZED (
        SELECT id FROM user_account WHERE id = CAST(:user_id AS uuid) FOR NO KEY UPDATE
    )
    SELECT pg_advisory_xact_lock_shared({GRANTS_LOCK_NAMESPACE}, {_USER_KEY}) FROM account
    """
)

# A statement of its own, after LOCK_OWNER: its snapshot then holds every grant committed
# before the grants lock was granted. Without grants the owner's feed is the only one
# written, and its lock comes with the answer: the owner's own changes cost one query more.
SHARES_OR_LOCK_FEED = text(
    f"""
    SELECT shares.found,
           (SELECT count(pg_advisory_xact_lock({FEED_LOCK_NAMESPACE}, {_USER_KEY}))
            WHERE NOT shares.found) AS locked
    FROM (
        SELECT EXISTS (
            SELECT FROM share_grant WHERE owner_id = CAST(:user_id AS uuid)
        ) AS found
    ) AS shares
    """
)

LOCK_GRANTS = text(f"SELECT pg_advisory_xact_lock({GRANTS_LOCK_NAMESPACE}, {_USER_KEY})")

# The rows come sorted out of the subquery and are locked in that order.
LOCK_FEEDS = text(
    f"""
    SELECT count(pg_advisory_xact_lock({FEED_LOCK_NAMESPACE}, keys.key))
    FROM (
        SELECT DISTINCT hashtext(CAST(id AS text)) AS key
        FROM unnest(CAST(:user_ids AS uuid[])) AS id
        ORDER BY key
    ) AS keys
    """
)

NOTIFY = text("SELECT pg_notify(:channel, CAST(CAST(:user_id AS uuid) AS text))")
NOTIFY_ALL = text(
    "SELECT pg_notify(:channel, CAST(id AS text)) FROM unnest(CAST(:user_ids AS uuid[])) AS id"
)


async def record(
    session: AsyncSession,
    *,
    user_id: UUID,
    node_id: UUID,
    change: ChangeKind,
    node_kind: str,
    path: str,
    revision_id: UUID | None = None,
    size: int | None = None,
    content_hash: str | None = None,
    previous: Placement | None = None,
) -> None:
    """Add a change to the feed of `user_id` (the node's owner) and of everyone who sees the
    node through a share. `path` is where the node is after the change (where it was, for a
    deletion); a moved folder's subtree moves with it and gets no rows of its own. For a move,
    `previous` is where the node was, so that recipients of shares it left or entered learn
    it."""
    owners = FeedRow(
        user_id=user_id,
        node_id=node_id,
        change=change,
        node_kind=node_kind,
        path=path,
        revision_id=revision_id,
        size=size,
        content_hash=content_hash,
    )
    await session.execute(LOCK_OWNER, {"user_id": user_id})
    shares = (await session.execute(SHARES_OR_LOCK_FEED, {"user_id": user_id})).one()
    if not shares.found:
        await _add(session, [owners])
        await session.execute(NOTIFY, {"channel": NOTIFY_CHANNEL, "user_id": user_id})
        return
    rows = [owners, *await audience.fan_out(session, user_id, owners, previous)]
    await write(session, rows)


async def lock_grants(session: AsyncSession, owner_id: UUID) -> None:
    """Hold off the owner's tree changes from recording until this transaction ends, and wait
    for those recording now: taken when grants are added or removed."""
    await session.execute(LOCK_GRANTS, {"user_id": owner_id})


async def lock_feeds(session: AsyncSession, user_ids: Sequence[UUID]) -> None:
    """Take the feed locks of these accounts, in key order, until the transaction ends: what
    else is written in their name then commits in the order its ids were drawn."""
    await session.execute(LOCK_FEEDS, {"user_ids": sorted(set(user_ids))})


async def notify(session: AsyncSession, user_ids: Sequence[UUID]) -> None:
    """Wake these accounts' long-polls and streams once the transaction commits."""
    await session.execute(NOTIFY_ALL, {"channel": NOTIFY_CHANNEL, "user_ids": list(user_ids)})


async def write(session: AsyncSession, rows: Sequence[FeedRow]) -> None:
    """Write feed rows to the feeds they name, under those feeds' locks, and wake them."""
    if not rows:
        return
    user_ids = sorted({row.user_id for row in rows})
    await lock_feeds(session, user_ids)
    await _add(session, rows)
    await notify(session, user_ids)


async def _add(session: AsyncSession, rows: Sequence[FeedRow]) -> None:
    # One multi-row INSERT, under the feed locks, which last until commit: a share with a
    # role writes a row for every account of it, and ORM objects cost ten times as much.
    # PostgreSQL folds identical notifications of one transaction into one.
    await session.execute(
        insert(Change),
        [
            {
                "user_id": row.user_id,
                "node_id": row.node_id,
                "change": row.change,
                "node_kind": row.node_kind,
                "path": row.path,
                "revision_id": row.revision_id,
                "size": row.size,
                "content_hash": row.content_hash,
                "grant_id": row.grant_id,
            }
            for row in rows
        ],
    )
