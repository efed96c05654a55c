"""Where a dropped file goes: always a new file in the request's folder, under a name no live
node there holds in any case ("report (2).pdf" beside "Report.pdf"), so a drop never joins or
replaces anything."""

from uuid import UUID, uuid4

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from dropp.file_requests.errors import NameBusy
from dropp.files import tree
from dropp.files.models import Node, NodeKind

# Each failed attempt means a name was taken by a commit the next attempt sees, so only as
# many concurrent drops of one name as this can make it give up.
ATTEMPTS = 10


async def new_file(session: AsyncSession, owner_id: UUID, folder_id: UUID, name: str) -> UUID:
    """A new, empty file node in the folder, named `name` or the first free numbered form of it.

    The unique index on live names decides: an insert that finds the name taken (by a file, a
    folder, or a concurrent upload) inserts nothing, and the next free name is tried.
    """
    candidate = name
    for _ in range(ATTEMPTS):
        created: UUID | None = await session.scalar(
            insert(Node)
            .values(
                id=uuid4(),
                owner_id=owner_id,
                parent_id=folder_id,
                kind=NodeKind.FILE,
                name=candidate,
            )
            .on_conflict_do_nothing()
            .returning(Node.id)
        )
        if created is not None:
            return created
        candidate = await tree.free_name(session, owner_id, folder_id, name, NodeKind.FILE)
    raise NameBusy("Many files of this name are arriving at once: try again in a moment.")
