from datetime import datetime
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dropp.core.schemas import AS_WHOLE_NUMBER, RequestBody, exactly_one_of
from dropp.files.models import NodeKind

MIN_LINK_PASSWORD = 8
MAX_LINK_PASSWORD = 256
MAX_EXPIRES_IN = 365 * 24 * 3600
MAX_DOWNLOAD_LIMIT = 1_000_000


class ShareLinkCreate(RequestBody):
    model_config = ConfigDict(json_schema_extra=exactly_one_of("file_id", "folder_id"))

    file_id: UUID | None = Field(None, description="The file to share; or give `folder_id`.")
    folder_id: UUID | None = Field(
        None, description="The folder to share, with everything in it; or give `file_id`."
    )
    expires_in: Annotated[int, Field(ge=60, le=MAX_EXPIRES_IN), AS_WHOLE_NUMBER] | None = Field(
        None,
        description="Seconds until the link stops working; never, when absent.",
    )
    password: str | None = Field(
        None,
        min_length=MIN_LINK_PASSWORD,
        max_length=MAX_LINK_PASSWORD,
        description="Visitors must enter it before they see or download anything.",
    )
    max_downloads: Annotated[int, Field(ge=1, le=MAX_DOWNLOAD_LIMIT), AS_WHOLE_NUMBER] | None = (
        Field(
            None,
            description="Download URLs the link may hand out, in all; unlimited when absent.",
        )
    )

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if (self.file_id is None) == (self.folder_id is None):
            raise ValueError("give exactly one of `file_id` and `folder_id`")
        return self


class ShareLinkRead(BaseModel):
    id: UUID
    kind: NodeKind
    node_id: UUID
    name: str
    path: str = Field(description="Where the shared item is in your tree now.")
    expires_at: datetime | None
    expired: bool
    in_trash: bool = Field(
        description="The shared item is in the trash: the link answers 404 until it is restored."
    )
    password_protected: bool
    max_downloads: int | None
    downloads_used: int
    download_count: int = Field(description="Download URLs recorded for this link.")
    created_at: datetime


class ShareLinkCreated(ShareLinkRead):
    token: str = Field(description="Shown only here: Dropp keeps nothing it could show again.")
    url: str = Field(description="The link to hand out: `{PUBLIC_URL}/s/{token}`.")


class ShareLinkPage(BaseModel):
    items: list[ShareLinkRead] = Field(description="Newest first.")
    next_cursor: str | None


# --- what a link's holder sees --------------------------------------------------------------


class SharedFileRead(BaseModel):
    kind: Literal["file"] = "file"
    name: str
    size: int | None = Field(description="Null while the file has no completed upload.")
    content_type: str | None
    content_hash: str | None
    expires_at: datetime | None = Field(description="When the link stops working.")
    downloads_left: int | None = Field(description="Null when the link has no limit.")


class SharedItem(BaseModel):
    name: str
    kind: NodeKind
    path: str = Field(description="Relative to the shared folder, such as `/photos/a.jpg`.")
    size: int | None
    content_type: str | None


class SharedFolderRead(BaseModel):
    kind: Literal["folder"] = "folder"
    name: str = Field(description="The shared folder's name.")
    path: str = Field(description="The folder listed, relative to the shared folder.")
    items: list[SharedItem] = Field(
        description="Folders first, then files, each by name; files still uploading are left "
        "out, so a page may hold fewer than `limit` items."
    )
    next_cursor: str | None
    expires_at: datetime | None
    downloads_left: int | None


class ShareUnlock(RequestBody):
    password: str = Field(min_length=1, max_length=1024)


class ShareAccess(BaseModel):
    access: str = Field(description="Send it back in the `X-Share-Access` header.")
    expires_at: datetime


# --- download counts for owners -------------------------------------------------------------


class DownloadsByChannel(BaseModel):
    owner: int
    link: int
    share: int


class FileDownloadsRead(BaseModel):
    file_id: UUID
    total: int = Field(description="Download URLs issued for the file, through any channel.")
    by_channel: DownloadsByChannel
    last_downloaded_at: datetime | None
