from pydantic import BaseModel, Field


class ContentTypeUsage(BaseModel):
    content_type: str
    files: int = Field(description="Files with at least one kept revision of this type.")
    bytes: int = Field(description="Bytes of the kept revisions of this type.")


class UsageRead(BaseModel):
    files: int = Field(description="Files in your tree, pending ones included.")
    bytes: int = Field(description="Bytes of every kept revision: what counts against the quota.")
    reserved: int = Field(description="Bytes held by uploads still pending.")
    quota: int | None = Field(description="Your quota in bytes; null: none.")
    by_content_type: list[ContentTypeUsage]
