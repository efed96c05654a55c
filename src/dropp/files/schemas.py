from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel

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
    created_at: datetime
    updated_at: datetime


class FilePage(BaseModel):
    files: list[FileRead]
    next_cursor: str | None


class DownloadRead(BaseModel):
    url: str
    expires_at: datetime
