import re
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field

from dropp.files.names import normalize_name, split_folder_path

# RFC 6838 type/subtype, optionally with a charset; anything richer is refused rather than
# pinned into a storage policy verbatim.
CONTENT_TYPE = re.compile(
    r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
    r"(; ?charset=[a-z0-9._-]{1,40})?$"
)


def _content_type(value: str) -> str:
    value = value.strip().lower()
    if not CONTENT_TYPE.match(value):
        raise ValueError("not a media type such as 'application/pdf'")
    return value


def _folder(value: str) -> str:
    split_folder_path(value)
    return value


FileName = Annotated[str, Field(max_length=1024), AfterValidator(normalize_name)]
ContentType = Annotated[str, Field(max_length=255), AfterValidator(_content_type)]
FolderPath = Annotated[str, Field(max_length=4096), AfterValidator(_folder)]


class UploadCreate(BaseModel):
    filename: FileName
    size: int | None = Field(
        None, ge=0, strict=True, description="Exact size in bytes; storage enforces it."
    )
    content_type: ContentType | None = Field(None, description="Guessed from the name if absent.")
    folder: FolderPath | None = Field(None, description="Like /reports/2026; created if missing.")


class UploadComplete(BaseModel):
    upload_id: UUID | None = Field(
        None, description="Which upload to complete; needed only while several are pending."
    )


class PresignedForm(BaseModel):
    method: Literal["POST"] = "POST"
    url: str
    fields: dict[str, str]


class UploadRead(BaseModel):
    file_id: UUID
    upload_id: UUID
    status: Literal["pending"] = "pending"
    content_type: str
    upload: PresignedForm
    expires_at: datetime
