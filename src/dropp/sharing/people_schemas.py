from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from dropp.core.emails import EmailAddress
from dropp.core.openapi import ENUM_SETTING
from dropp.core.schemas import RequestBody, exactly_one_of
from dropp.files.models import NodeKind, RevisionState
from dropp.files.schemas import FileRead, NodeRead
from dropp.roles.policy import ROLE_NAME_PATTERN
from dropp.sharing.models import Permission


def _note(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip() or None


Note = Annotated[str | None, Field(max_length=1000), AfterValidator(_note)]


class GrantCreate(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [exactly_one_of("file_id", "folder_id"), exactly_one_of("email", "role")]
        }
    )

    file_id: UUID | None = Field(None, description="The file to share; or `folder_id`.")
    folder_id: UUID | None = Field(
        None, description="The folder to share, with everything in it; or `file_id`."
    )
    email: EmailAddress | None = Field(
        None,
        description="Share with the account holding this address, once it is verified; or `role`.",
    )
    role: str | None = Field(
        None,
        pattern=ROLE_NAME_PATTERN,
        description="Share with every verified account of this role; or `email`.",
        json_schema_extra={ENUM_SETTING: "role_names"},
    )
    permission: Permission = Field(
        description="`viewer`: list and download. `editor`: also upload new files and revisions."
    )
    note: Note = Field(None, description="Shown to the people you share with.")

    @model_validator(mode="after")
    def _one_node_one_grantee(self) -> "GrantCreate":
        if (self.file_id is None) == (self.folder_id is None):
            raise ValueError("give exactly one of `file_id` and `folder_id`")
        if (self.email is None) == (self.role is None):
            raise ValueError("give exactly one of `email` and `role`")
        return self


class GrantUpdate(RequestBody):
    # `note: null` removes the note, so only `permission` must not be null.
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {"anyOf": [{"required": ["permission"]}, {"required": ["note"]}]},
                {"properties": {"permission": {"not": {"type": "null"}}}},
            ]
        }
    )

    permission: Permission | None = Field(None, description="The new permission.")
    note: Note = Field(None, description="The new note; `null` removes it.")

    @model_validator(mode="after")
    def _something(self) -> "GrantUpdate":
        if not self.model_fields_set & {"permission", "note"}:
            raise ValueError("give `permission`, `note` or both")
        if "permission" in self.model_fields_set and self.permission is None:
            raise ValueError("`permission` is `viewer` or `editor`")
        return self


class GrantRead(BaseModel):
    """A share of one of your files or folders with an address or a role."""

    id: UUID
    node_id: UUID
    kind: NodeKind
    name: str
    path: str = Field(description="Where the node is in your tree.")
    in_trash: bool = Field(
        description="The node is in your trash: the share gives nothing until it is restored."
    )
    grantee_email: str | None
    grantee_role: str | None
    permission: Permission
    note: str | None
    created_at: datetime
    updated_at: datetime


class GrantPage(BaseModel):
    grants: list[GrantRead] = Field(description="Newest first.")
    next_cursor: str | None


class SharedRead(BaseModel):
    """A file or folder someone shared with you; the file fields are null for folders."""

    grant_id: UUID
    node_id: UUID
    kind: NodeKind
    name: str
    path: str = Field(description="`/<name>`: where the share starts as you see it.")
    permission: Permission = Field(
        description="What you may do here: the strongest of the shares that cover it."
    )
    owner_email: str | None
    note: str | None
    size: int | None = None
    content_type: str | None = None
    status: RevisionState | None = None
    revision_id: UUID | None = None
    shared_at: datetime


class SharedPage(BaseModel):
    items: list[SharedRead] = Field(description="Newest share first.")
    next_cursor: str | None


class SharedChildrenPage(BaseModel):
    """A folder inside a share: its children as `GET /folders` lists them, with paths as you
    see them (starting at the shared folder's name)."""

    grant_id: UUID
    path: str
    permission: Permission
    items: list[NodeRead] = Field(description="Folders first, then files; each by name.")
    next_cursor: str | None


class RecipientFileRead(FileRead):
    """A file someone shared with you: its path as you see it, and the share it is seen
    through."""

    grant_id: UUID
    permission: Permission
