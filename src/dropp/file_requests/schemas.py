from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from dropp.core.char_classes import blank, printable
from dropp.core.schemas import (
    AS_WHOLE_NUMBER,
    DateTimeText,
    RequestBody,
    exactly_one_of,
    present,
)
from dropp.files.schemas import NewFolderPath
from dropp.uploads.schemas import (
    MAX_OBJECT_BYTES,
    ContentType,
    FileName,
    PresignedForm,
    Sha256,
)

# Ten years: far enough for any deadline, near enough that the arithmetic cannot overflow.
MAX_EXPIRES_IN = 10 * 365 * 24 * 3600
MAX_TITLE_LENGTH = 200


def _title(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("a title cannot be empty")
    if not value.isprintable():
        raise ValueError("a title is one line of printable text")
    return value


@cache
def _title_pattern() -> str:
    # The blanks around it are dropped, so they may be any; what is left is printable and
    # neither starts nor ends with a space, the one printable blank.
    around = f"{blank().regex()}*"
    return f"^{around}(?!\\u0020){printable().regex()}+(?<!\\u0020){around}$"


def _title_schema(schema: JsonDict) -> None:
    schema.update(minLength=1, pattern=_title_pattern())


Title = Annotated[
    str,
    Field(max_length=MAX_TITLE_LENGTH, json_schema_extra=_title_schema),
    AfterValidator(_title),
]


class FileRequestCreate(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                exactly_one_of("folder_path", "folder_id"),
                {"not": {"allOf": [present("deadline"), present("expires_in")]}},
            ]
        }
    )

    folder_path: NewFolderPath | None = Field(
        None, description="Like /inbox/2026; created like `mkdir -p` if missing."
    )
    folder_id: UUID | None = Field(None, description="One of your folders, instead of a path.")
    title: Title = Field(description="What the uploader sees, e.g. 'Photos from the trip'.")
    deadline: DateTimeText | None = Field(
        None,
        description="No upload starts after this moment; must be in the future (else 422 "
        "`deadline_in_past`: a rule of time, which a schema cannot state).",
    )
    expires_in: Annotated[int, Field(ge=60, le=MAX_EXPIRES_IN), AS_WHOLE_NUMBER] | None = Field(
        None,
        description="A deadline this many seconds from now, instead of `deadline`.",
    )
    max_file_bytes: Annotated[int, Field(ge=1, le=MAX_OBJECT_BYTES), AS_WHOLE_NUMBER] | None = (
        Field(
            None,
            description="The largest file accepted; absent: your role's limit, if any, else the "
            "server's.",
        )
    )
    max_uploads: Annotated[int, Field(ge=1, le=1_000_000), AS_WHOLE_NUMBER] | None = Field(
        None, description="How many uploads may be started."
    )

    @model_validator(mode="after")
    def _one_folder_one_deadline(self) -> "FileRequestCreate":
        if (self.folder_path is None) == (self.folder_id is None):
            raise ValueError("give exactly one of `folder_path` and `folder_id`")
        if self.deadline is not None and self.expires_in is not None:
            raise ValueError("give `deadline` or `expires_in`, not both")
        return self


class FileRequestState(StrEnum):
    OPEN = "open"
    EXPIRED = "expired"
    FULL = "full"
    FOLDER_IN_TRASH = "folder_in_trash"


class FileRequestRead(BaseModel):
    id: UUID
    title: str
    folder_id: UUID
    folder_path: str
    deadline: datetime | None
    max_file_bytes: int | None
    max_uploads: int | None
    uploads_used: int = Field(description="Uploads started through the link, cancelled ones not.")
    files_received: int = Field(description="Uploads completed through the link.")
    state: FileRequestState = Field(
        description="`open` accepts uploads; `expired` is past its deadline, `full` has no "
        "uploads left, `folder_in_trash` waits for its folder to be restored."
    )
    created_at: datetime


class FileRequestCreated(FileRequestRead):
    token: str = Field(description="The link's secret; shown only in this answer.")
    url: str = Field(description="The link to hand out: `{PUBLIC_URL}/r/{token}`.")


class FileRequestPage(BaseModel):
    file_requests: list[FileRequestRead] = Field(description="Newest first.")
    next_cursor: str | None


# --- the link's side: anyone holding it ----------------------------------------------------


class FileRequestPublicRead(BaseModel):
    title: str
    deadline: datetime | None
    max_file_bytes: int = Field(description="The largest file the link accepts, in bytes.")
    uploads_left: int | None = Field(description="Null: no limit on the number of uploads.")


class DropCreate(RequestBody):
    filename: FileName = Field(description="The name it is stored under, numbered if taken.")
    size: Annotated[int, Field(ge=0, le=MAX_OBJECT_BYTES), AS_WHOLE_NUMBER] = Field(
        description="Exact size in bytes; storage enforces it.",
    )
    content_type: ContentType | None = Field(None, description="Guessed from the name if absent.")
    sha256: Sha256 | None = Field(
        None, description="The file's SHA-256 (hex or base64); storage refuses other bytes."
    )


class DropRead(BaseModel):
    upload_id: UUID
    file_id: UUID
    upload: PresignedForm = Field(
        description="POST the file to `url` as multipart/form-data: every field of `fields`, "
        "then the file as the last field, named `file`."
    )
    expires_at: datetime = Field(description="The form works until then.")


class DropCompleteRead(BaseModel):
    status: Literal["complete"] = "complete"
    size: int
    content_hash: str | None = Field(
        None, description="`sha256:<hex>` when the upload declared a SHA-256 storage verified."
    )
