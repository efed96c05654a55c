from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, Field

from dropp.files.models import RevisionState


class StatusFilter(StrEnum):
    COMPLETE = "complete"
    PENDING = "pending"
    ALL = "all"


class FileRead(BaseModel):
    file_id: UUID
    name: str
    path: str
    size: int | None
    content_type: str | None
    status: RevisionState
    revision_id: UUID | None
    content_hash: str | None = Field(
        None,
        description="`sha256:<hex>`, or `sha256-parts-<part size>:<hex>` for a multipart "
        "upload; null unless the upload declared a hash that storage verified.",
    )
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = Field(
        None, description="When the file is removed (FILE_EXPIRY_DAYS or `expires_in`)."
    )


class FilePage(BaseModel):
    files: list[FileRead]
    next_cursor: str | None


class DownloadRead(BaseModel):
    url: str
    expires_at: datetime
