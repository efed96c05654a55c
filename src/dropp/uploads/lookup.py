"""Finding the upload a request names: the caller's, locked, and unambiguous."""

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from dropp.files import service as files_service
from dropp.files.models import FileRevision, RevisionState
from dropp.uploads.errors import UploadAmbiguous, UploadNotFound


async def locate_upload(
    session: AsyncSession, owner_id: UUID, file_id: UUID, upload_id: UUID | None
) -> FileRevision:
    """The named upload of the caller's file, else its only pending one, else its newest;
    locked for the rest of the transaction. Another user's file is UploadNotFound."""
    revision = await files_service.lock_revision(session, owner_id, file_id, upload_id)
    if revision is None:
        raise UploadNotFound("There is no such upload.")
    if (
        revision.state == RevisionState.PENDING
        and upload_id is None
        and await files_service.count_pending(session, file_id) > 1
    ):
        raise UploadAmbiguous(
            "Several uploads of this file are pending: name one with `upload_id`."
        )
    return revision
