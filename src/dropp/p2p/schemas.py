"""The signaling messages peers send (docs/p2p.md), and the fallback routes' answers."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from dropp.files.schemas import NodeName
from dropp.uploads.schemas import Sha256

# At most 5 TiB, what storage holds in one object.
FileSize = Annotated[int, Field(ge=0, le=5 * 1024**4)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileOffer(_Message):
    name: NodeName
    size: FileSize
    sha256: Sha256


class Open(_Message):
    type: Literal["open"]
    token: Annotated[str, Field(max_length=4096)]
    file: FileOffer


class Join(_Message):
    type: Literal["join"]
    code: Annotated[str, Field(max_length=40)]


class Signal(_Message):
    type: Literal["signal"]
    # An SDP or ICE candidate as the peer's WebRTC stack produced it: relayed, never read.
    data: dict[str, Any] | None


class Progress(_Message):
    type: Literal["progress"]
    bytes: FileSize


class Fallback(_Message):
    type: Literal["fallback"]
    reason: Annotated[str, Field(max_length=200)] = ""


class Done(_Message):
    type: Literal["done"]
    via: Literal["p2p", "cloud"]
    sha256: Sha256


First = Annotated[Open | Join, Field(discriminator="type")]
Relayed = Annotated[Signal | Progress | Fallback | Done, Field(discriminator="type")]
first_message: TypeAdapter[Open | Join] = TypeAdapter(First)
relayed_message: TypeAdapter[Signal | Progress | Fallback | Done] = TypeAdapter(Relayed)


class CloudUpload(BaseModel):
    """A form that puts exactly the declared file under this transfer's key in storage."""

    url: str
    fields: dict[str, str]
    expires_in: int
