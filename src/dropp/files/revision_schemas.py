from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from dropp.core.schemas import RequestBody
from dropp.uploads.schemas import DeviceName


class RevisionRead(BaseModel):
    revision_id: UUID
    size: int
    content_hash: str | None = Field(
        None, description="As on the file: null unless the upload declared a verified hash."
    )
    content_type: str
    created_at: datetime
    completed_at: datetime
    device: str | None = Field(None, description="The device that made it, as its client said.")
    uploaded_by: UUID | None = Field(
        None, description="Who uploaded it when not the file's owner: an editor of a share."
    )
    uploaded_by_email: str | None = Field(None, description="That account's address.")
    current: bool = Field(description="Whether downloads of the file serve this revision.")


class RevisionPage(BaseModel):
    revisions: list[RevisionRead]
    next_cursor: str | None


class RevisionRestore(RequestBody):
    device: DeviceName | None = Field(
        None, description="The device asking for the restore, recorded on the new revision."
    )
