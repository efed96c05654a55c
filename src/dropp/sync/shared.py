"""What the sharing feature tells the change feed: a grant added or removed.

Changes to a shared node reach its recipients through `changes.record`; these hooks cover the
grant itself. A grant's recipients are told of its node only, at `/<name>` with the grant's
id: for a folder, the client lists what it holds (`GET /shared/{grant_id}/items`), as it does
after a restore. A change of permission or note changes nothing anyone sees: no hook.
"""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.files import service as files_service
from dropp.files.models import FileRevision, Node, NodeKind
from dropp.sharing.models import ShareGrant
from dropp.sync import audience, changes
from dropp.sync.models import ChangeKind
from dropp.sync.rows import FeedRow


async def grant_added(session: AsyncSession, grant: ShareGrant) -> None:
    """Give each account the new grant applies to a `created` row for its node. Call it in
    the transaction that adds the grant, once the grant is added."""
    await _announce(session, grant, ChangeKind.CREATED)


async def grant_removed(session: AsyncSession, grant: ShareGrant) -> None:
    """Give each account the grant applied to a `deleted` row for its node. Call it in the
    transaction that removes the grant, before or after the row goes; `grant` keeps the
    values it had."""
    await _announce(session, grant, ChangeKind.DELETED)


async def _announce(session: AsyncSession, grant: ShareGrant, change: ChangeKind) -> None:
    # The id a new grant gets at flush is what its rows name.
    await session.flush()
    owner_id, grant_id = grant.owner_id, grant.id
    # Taken before anything is read: a tree change recording now either commits first (and
    # the recipients list the node with it) or waits, and then sees this grant, or not.
    await changes.lock_grants(session, owner_id)
    found = (
        await session.execute(
            select(Node, FileRevision)
            .outerjoin(FileRevision, FileRevision.id == Node.current_revision_id)
            .where(Node.id == grant.node_id, Node.trashed_at.is_(None))
        )
    ).first()
    if found is None:
        # A grant on a node in the trash gives nothing; its recipients heard `deleted` when
        # it went there.
        return
    node, revision = found
    if node.kind == NodeKind.FILE and revision is None:
        # A file shows up once its first upload completes; that completion tells them.
        return
    # A `deleted` row names no revision, as the owner's do not.
    shown = revision if change == ChangeKind.CREATED else None
    recipients = await audience.grant_recipients(
        session, owner_id, grant.grantee_email, grant.grantee_role
    )
    await changes.write(
        session,
        [
            FeedRow(
                user_id=user_id,
                node_id=node.id,
                change=change,
                node_kind=node.kind,
                path=f"/{node.name}",
                revision_id=shown.id if shown else None,
                size=shown.size if shown else None,
                content_hash=(
                    files_service.content_hash(shown.sha256, shown.part_size) if shown else None
                ),
                grant_id=grant_id,
            )
            for user_id in recipients
        ],
    )
