"""Feed rows before they are written, and where a moved node was."""

from dataclasses import dataclass
from uuid import UUID

from dropp.sync.models import ChangeKind


@dataclass(frozen=True, slots=True)
class FeedRow:
    """One row of one user's feed, before it is written."""

    user_id: UUID
    node_id: UUID
    change: ChangeKind
    node_kind: str
    path: str
    revision_id: UUID | None = None
    size: int | None = None
    content_hash: str | None = None
    grant_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a node was: its folder (None at the top level) and its name."""

    parent_id: UUID | None
    name: str
