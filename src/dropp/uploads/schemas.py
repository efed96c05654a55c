import re
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    computed_field,
    model_validator,
)
from pydantic.config import JsonDict

from dropp.core.char_classes import CharSet, printable
from dropp.core.errors import Problem
from dropp.core.schemas import AS_WHOLE_NUMBER, RequestBody
from dropp.files.conflicts import ConflictMode
from dropp.files.name_schema import name_schema, path_schema
from dropp.files.names import normalize_name, split_folder_path
from dropp.files.schemas import FileRead
from dropp.uploads.hashing import (
    MAX_PARTS,
    MAX_PARTS_PER_CALL,
    SHA256_PATTERN,
    normalize_sha256,
)

# Integers are bounded to what the server can hold: S3's largest object, and a lifetime a
# date can still express (a larger `expires_in` overflowed datetime arithmetic into a 500).
MAX_OBJECT_BYTES = 5 * 1024**4
MAX_FILE_EXPIRES_IN = 100 * 365 * 24 * 3600

# RFC 6838 type/subtype, optionally with a charset; anything richer is refused rather than
# pinned into a storage policy verbatim.
# type/subtype with an optional charset, in ASCII of any case. Matched as sent, with no
# stripping or Unicode case folding first ("\u212aext/plain" lowercases to "text/plain"), so
# the schema's pattern says exactly what is taken.
CONTENT_TYPE_PATTERN = (
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
    r"(?:; ?[Cc][Hh][Aa][Rr][Ss][Ee][Tt]=[A-Za-z0-9._-]{1,40})?$"
)
CONTENT_TYPE = re.compile(CONTENT_TYPE_PATTERN)


def _content_type(value: str) -> str:
    if not CONTENT_TYPE.fullmatch(value):
        raise ValueError("not a media type such as 'application/pdf'")
    return value.lower()


def _folder(value: str) -> str:
    split_folder_path(value)
    return value


FileName = Annotated[
    str, Field(max_length=1024, json_schema_extra=name_schema), AfterValidator(normalize_name)
]
ContentType = Annotated[
    str, Field(max_length=255, pattern=CONTENT_TYPE_PATTERN), AfterValidator(_content_type)
]
FolderPath = Annotated[
    str,
    Field(max_length=4096, json_schema_extra=path_schema(top_level=True)),
    AfterValidator(_folder),
]
# Normalized to lowercase hex; accepted as 64 hex digits or 44 characters of base64.
Sha256 = Annotated[
    str,
    Field(min_length=44, max_length=64, pattern=SHA256_PATTERN),
    AfterValidator(normalize_sha256),
]
# A part number as a JSON object key: 1 to MAX_PARTS, without leading zeros.
PART_NUMBER_KEY = "^(?:[1-9][0-9]{0,3}|10000)$"
PartNumber = Annotated[int, Field(ge=1, le=MAX_PARTS)]


def _device(value: str) -> str:
    # It goes into conflicted copies' names, so it must be a valid piece of a name.
    if not value.isprintable() or "/" in value or "\\" in value or not value.strip():
        raise ValueError("a device name is printable text without '/' or '\\'")
    return value.strip()


@cache
def _device_pattern() -> str:
    # Printable throughout, so the one blank it may hold is the space; not only spaces.
    allowed = printable() - CharSet.of("/\\")
    return f"^(?!\\u0020*$){allowed.regex()}+$"


def _device_schema(schema: JsonDict) -> None:
    schema["pattern"] = _device_pattern()


DeviceName = Annotated[
    str,
    Field(min_length=1, max_length=64, json_schema_extra=_device_schema),
    AfterValidator(_device),
]


class UploadCreate(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"required": ["multipart"], "properties": {"multipart": {"const": True}}},
            "then": {
                "required": ["size"],
                "properties": {"size": {"type": "integer", "minimum": 1}},
            },
        }
    )

    filename: FileName
    size: Annotated[int, Field(ge=0, le=MAX_OBJECT_BYTES), AS_WHOLE_NUMBER] | None = Field(
        None,
        description="Exact size in bytes; storage enforces it.",
    )
    content_type: ContentType | None = Field(None, description="Guessed from the name if absent.")
    folder: FolderPath | None = Field(None, description="Like /reports/2026; created if missing.")
    share_id: UUID | None = Field(
        None,
        description="Upload into something shared with you as `editor` (the `grant_id` of "
        "GET /shared): `folder` is then inside the shared folder, or for a shared file "
        "absent, with `filename` the file's name. It goes to the owner's files and quota.",
    )
    expires_in: Annotated[int, Field(ge=60, le=MAX_FILE_EXPIRES_IN), AS_WHOLE_NUMBER] | None = (
        Field(
            None,
            description="Remove the file this many seconds after this upload; at most "
            "FILE_EXPIRY_DAYS when the server sets it, which applies without this.",
        )
    )
    multipart: bool = Field(
        False,
        description="Upload in parts even below MULTIPART_THRESHOLD_BYTES; needs `size`.",
    )
    sha256: Sha256 | None = Field(
        None,
        description="The file's SHA-256 (hex or base64); storage refuses other bytes. For a "
        "multipart upload, the parts hash: SHA-256 over each part's SHA-256.",
    )

    # Sync: who writes, and what the client last saw of the file (see the README's conflicts).
    device: DeviceName | None = Field(
        None, description="A short name for the client's device; conflicted copies show it."
    )
    base_revision: UUID | None = Field(
        None,
        description="The revision the client last saw of this file; absent: no opinion, the "
        "upload becomes the newest revision whatever changed meanwhile.",
    )
    conflict: ConflictMode = Field(
        ConflictMode.KEEP_BOTH,
        description="When the file changed since `base_revision`: `keep_both` stores these "
        "bytes as a conflicted copy beside it, `overwrite` makes them the newest revision "
        "anyway, `fail` answers 409 `revision_conflict` and stores nothing.",
    )

    @model_validator(mode="after")
    def _multipart_needs_size(self) -> "UploadCreate":
        if self.multipart and not self.size:
            raise ValueError("a multipart upload needs its `size`, at least one byte")
        return self


class PartRef(BaseModel):
    part_number: PartNumber
    etag: str = Field(max_length=200)


class UploadComplete(RequestBody):
    upload_id: UUID | None = Field(
        None, description="Which upload to complete; needed only while several are pending."
    )
    parts: list[PartRef] | None = Field(
        None,
        max_length=MAX_PARTS,
        description="Multipart only: the parts as the client sent them; refused unless storage "
        "holds exactly these.",
    )


class PartUrlsCreate(RequestBody):
    upload_id: UUID | None = None
    part_numbers: list[PartNumber] = Field(
        min_length=1, max_length=MAX_PARTS_PER_CALL, json_schema_extra={"uniqueItems": True}
    )
    sha256: dict[PartNumber, Sha256] = Field(
        default_factory=dict,
        json_schema_extra={"propertyNames": {"pattern": PART_NUMBER_KEY}},
        description="Part number to that part's SHA-256, for every part asked for (one given "
        "by an earlier call may be left out): its URL takes only those bytes, of the part's "
        "exact size. Parts not asked for yet may be declared ahead, all of them in the first "
        "call if you like; a part's hash cannot change once given.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "PartUrlsCreate":
        if len(set(self.part_numbers)) != len(self.part_numbers):
            raise ValueError("`part_numbers` lists a part twice")
        return self


class PartUrl(BaseModel):
    part_number: int
    url: str
    headers: dict[str, str] = Field(description="Send these with the PUT, exactly.")
    size: int = Field(description="The part's exact size in bytes: the URL takes no other.")


class PartUrlsRead(BaseModel):
    upload_id: UUID
    parts: list[PartUrl]
    expires_at: datetime


class StoredPartRead(BaseModel):
    part_number: int
    etag: str
    size: int


class StoredPartsRead(BaseModel):
    upload_id: UUID
    part_size: int
    part_count: int
    parts: list[StoredPartRead]


class PresignedForm(BaseModel):
    kind: Literal["post"] = "post"
    method: Literal["POST"] = "POST"
    url: str
    fields: dict[str, str]


class MultipartPlan(BaseModel):
    """Ask for part URLs at POST /upload/{file_id}/parts; every part is `part_size` bytes except
    the last."""

    kind: Literal["multipart"] = "multipart"
    part_size: int
    part_count: int


class UploadRead(BaseModel):
    file_id: UUID = Field(
        description="Deprecated: the same as `id`, kept for existing clients.",
        json_schema_extra={"deprecated": True},
    )
    upload_id: UUID = Field(
        description="The pending upload; or, when `status` is `complete`, "
        "the file's current revision, which already holds these bytes."
    )
    status: Literal["pending", "complete"] = "pending"
    content_type: str
    upload: Annotated[PresignedForm | MultipartPlan, Field(discriminator="kind")] | None
    expires_at: datetime | None

    @computed_field(description="The file's id.")  # type: ignore[prop-decorator]
    @property
    def id(self) -> UUID:
        return self.file_id


class ConflictRead(BaseModel):
    """The upload's file had changed since its `base_revision`: these bytes were kept beside
    it as a conflicted copy (the file this answer describes)."""

    kind: Literal["keep_both"] = "keep_both"
    original_file_id: UUID
    current_revision: UUID = Field(description="The original file's revision, untouched.")


class UploadCompleteRead(FileRead):
    conflict: ConflictRead | None = None
    in_trash: bool = Field(
        False,
        description="The file was moved to the trash while this upload was pending: the "
        "bytes are its newest revision there, and restoring the file brings them back.",
    )


# --- batches: many small files in a few round trips ---------------------------------------

MAX_BATCH_ITEMS = 100

# An item is taken as any JSON object and judged on its own, as POST /upload/ would judge it
# as a body: one item the server refuses (a name it cannot store, a field it does not know)
# gets that refusal in its place, and the other items go ahead. The schema names UploadCreate
# first so the document shows what succeeds.
BatchItem = Annotated[UploadCreate | dict[str, Any], Field(union_mode="left_to_right")]


class UploadBatchCreate(RequestBody):
    items: list[BatchItem] = Field(
        min_length=1,
        max_length=MAX_BATCH_ITEMS,
        description="Each one the body of POST /upload/. An object that is not a valid one "
        "gets the 422 POST /upload/ would answer in its place.",
    )


class UploadBatchCompleteItem(RequestBody):
    file_id: UUID
    upload_id: UUID | None = Field(
        None, description="Which upload to complete; needed only while several are pending."
    )


class UploadBatchComplete(RequestBody):
    items: list[UploadBatchCompleteItem] = Field(
        min_length=1,
        max_length=MAX_BATCH_ITEMS,
        description="Uploads to complete, as POST /upload/{file_id}/complete would; a multipart "
        "upload is assembled from the parts storage holds.",
    )


class ItemProblem(Problem):
    """The RFC 9457 problem the single route would answer for this item, members and all."""

    model_config = ConfigDict(extra="allow")


class BatchItemRefused(BaseModel):
    status: int = Field(ge=400, le=599, description="The single route's status for this item.")
    error: ItemProblem


class UploadBatchStarted(BaseModel):
    status: Literal[200, 201] = Field(
        description="201: started; 200: the file already holds these bytes (`upload.status` "
        "is `complete`)."
    )
    upload: UploadRead


class UploadBatchRead(BaseModel):
    items: list[UploadBatchStarted | BatchItemRefused] = Field(
        description="One answer per item, in the order asked."
    )


class UploadBatchCompleted(BaseModel):
    status: Literal[200] = 200
    # Each serialized as the model it is, as the single route answers: GET /files/{id}'s
    # fields, and `conflict` and `in_trash` only for a conflicted copy or a trashed file.
    file: FileRead | UploadCompleteRead


class UploadBatchCompleteRead(BaseModel):
    items: list[UploadBatchCompleted | BatchItemRefused] = Field(
        description="One answer per item, in the order asked."
    )
