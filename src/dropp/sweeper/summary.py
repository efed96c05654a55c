from dataclasses import dataclass, fields


@dataclass(slots=True)
class SweepSummary:
    """What one sweep did, case by case."""

    uploads_completed: int = 0
    uploads_expired: int = 0
    multipart_uploads_aborted: int = 0
    orphan_objects_deleted: int = 0
    files_expired: int = 0
    revisions_pruned: int = 0
    trash_purged: int = 0
    idempotency_keys_deleted: int = 0
    stale_rows_deleted: int = 0
    transfers_expired: int = 0
    transfer_copies_deleted: int = 0
    errors: int = 0

    def counts(self) -> dict[str, int]:
        return {field.name: getattr(self, field.name) for field in fields(self)}

    def describe(self) -> str:
        return ", ".join(
            f"{field.name.replace('_', ' ')}: {getattr(self, field.name)}" for field in fields(self)
        )
