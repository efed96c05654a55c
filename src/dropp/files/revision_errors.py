"""Errors of revisions and sync conflicts (the rest of the tree's are in `errors.py`)."""

from dropp.core.errors import BadRequest, Conflict, NotFound


class RevisionNotFound(NotFound):
    code = "revision_not_found"


class RevisionConflict(Conflict):
    """The file changed since the revision the client last saw; `current_revision` says to
    what. Nothing was stored."""

    code = "revision_conflict"


class RevisionConflictDiscarded(RevisionConflict):
    """The same conflict found at complete: the upload was discarded, which must persist."""

    persists_changes = True


class RevisionTooLarge(BadRequest):
    code = "revision_too_large"
