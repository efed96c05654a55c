from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from dropp.core.schemas import DateTimeText, RequestBody, UuidText
from dropp.sync.models import ChangeKind


# A TypedDict, not a model: pages of up to 1,000 entries are built from database rows, which
# already have these types, and serialized without being validated again; ids come as text.
class ChangeRead(TypedDict):
    """One change of the feed, or one live node of a snapshot (as `created`)."""

    change: ChangeKind
    node_id: UuidText
    kind: Annotated[str, Field(description="`folder` or `file`.")]
    path: Annotated[
        str, Field(description="Where the node is after the change (was, for `deleted`).")
    ]
    revision_id: UuidText | None
    size: int | None
    content_hash: str | None
    changed_at: datetime
    grant_id: Annotated[
        UuidText | None,
        Field(
            description="Set for someone else's node you see through a share: the share "
            "(`GET /shared/{grant_id}/items`). `path` then starts at the shared node, "
            "`/<its name>/...`. Null for your own nodes."
        ),
    ]


class ChangePage(BaseModel):
    changes: list[ChangeRead]
    cursor: str = Field(description="Pass back as `cursor`; opaque, bound to your account.")
    has_more: bool
    snapshot: bool = Field(
        description="True while paging through a snapshot: its entries are your live tree, "
        "then every live node shared with you (with `grant_id`), each as `created`. Its last "
        "page's cursor continues with the changes made since it began (some may repeat what "
        "the snapshot showed: apply them idempotently)."
    )


class LongPollRead(BaseModel):
    changes: bool


class SyncInit(RequestBody):
    last_sync_ts: DateTimeText | None = Field(
        None, description="Changes at or after this moment; none: a snapshot."
    )
