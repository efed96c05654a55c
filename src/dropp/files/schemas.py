from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, computed_field
from typing_extensions import TypedDict

from dropp.core.schemas import RequestBody, UuidText
from dropp.files.models import NodeKind, RevisionState
from dropp.files.name_schema import existing_path_schema, name_schema, path_schema
from dropp.files.names import existing_path_names, normalize_name, split_folder_path


class ChildOrder(StrEnum):
    """What a folder's children are sorted by: folders always come first, then files; ties
    by name."""

    NAME = "name"
    SIZE = "size"
    MODIFIED = "modified"


class Direction(StrEnum):
    ASC = "asc"
    DESC = "desc"


class StatusFilter(StrEnum):
    COMPLETE = "complete"
    PENDING = "pending"
    ALL = "all"


class FileRead(BaseModel):
    # Every object's answer names it `id`; `file_id` is what clients read before.
    file_id: UUID = Field(
        description="Deprecated: the same as `id`, kept for existing clients.",
        json_schema_extra={"deprecated": True},
    )
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

    @computed_field(description="The file's id.")  # type: ignore[prop-decorator]
    @property
    def id(self) -> UUID:
        return self.file_id


class FilePage(BaseModel):
    files: list[FileRead]
    next_cursor: str | None


class DownloadRead(BaseModel):
    url: str
    expires_at: datetime


# --- the tree: folders, moves, trash ------------------------------------------------------


def _folder_path(value: str) -> str:
    # Only looked up (a move's target): folders named under earlier rules can still be found.
    existing_path_names(value)
    return value


def _new_folder_path(value: str) -> str:
    if not split_folder_path(value):
        raise ValueError("name a folder below the top level, such as /reports")
    return value


NodeName = Annotated[
    str, Field(max_length=1024, json_schema_extra=name_schema), AfterValidator(normalize_name)
]
FolderPath = Annotated[
    str,
    Field(max_length=4096, json_schema_extra=existing_path_schema),
    AfterValidator(_folder_path),
]
NewFolderPath = Annotated[
    str,
    Field(max_length=4096, json_schema_extra=path_schema(top_level=False)),
    AfterValidator(_new_folder_path),
]


class FolderCreate(RequestBody):
    path: NewFolderPath = Field(description="Like `mkdir -p`: `/a/b` creates `a` and `a/b`.")


class FolderRead(BaseModel):
    folder_id: UUID = Field(
        description="Deprecated: the same as `id`, kept for existing clients.",
        json_schema_extra={"deprecated": True},
    )
    name: str
    path: str
    created_at: datetime
    updated_at: datetime

    @computed_field(description="The folder's id.")  # type: ignore[prop-decorator]
    @property
    def id(self) -> UUID:
        return self.folder_id


# A TypedDict, not a model: folder listings of up to 1,000 entries are built from database
# rows, which already have these types, and serialized without being validated again; ids
# come as text.
class NodeRead(TypedDict):
    """A folder or a file; the file fields are null for folders."""

    id: UuidText
    kind: NodeKind
    name: str
    path: str
    size: int | None
    content_type: str | None
    status: RevisionState | None
    revision_id: UuidText | None
    created_at: datetime
    updated_at: datetime


class FolderMove(RequestBody):
    name: NodeName | None = Field(None, description="The new name; unchanged when absent.")
    parent_path: FolderPath | None = Field(
        None, description="The folder to move into (`/` is the top level); unchanged when absent."
    )
    autorename: bool = Field(
        False, description='Take the first free "name (2).ext" instead of answering 409.'
    )


class FileMove(FolderMove):
    base_revision: UUID | None = Field(
        None,
        description="Answer 409 `conflict` unless this is still the current revision (a move "
        "cannot keep both versions).",
    )


class NodeRestore(RequestBody):
    autorename: bool = Field(
        False, description='Take the first free "name (2).ext" if the name is taken now.'
    )


class ChildrenPage(BaseModel):
    items: list[NodeRead] = Field(
        description="Folders first, then files; each in the order asked for (by name unless "
        "`sort` says otherwise)."
    )
    next_cursor: str | None


class SearchPage(BaseModel):
    items: list[NodeRead] = Field(description="Most recently changed first.")
    next_cursor: str | None


class TrashRead(BaseModel):
    id: UUID
    kind: NodeKind
    name: str
    original_path: str
    trashed_at: datetime
    purge_at: datetime = Field(description="When the sweeper deletes it for good.")


class TrashPage(BaseModel):
    items: list[TrashRead] = Field(description="Newest first.")
    next_cursor: str | None
