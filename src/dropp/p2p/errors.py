from dropp.core.errors import Conflict, DroppError, NotFound, PayloadTooLarge


class TransferNotFound(NotFound):
    code = "transfer_not_found"


class TransferFinished(Conflict):
    code = "transfer_finished"


class NotStored(Conflict):
    """Storage does not hold the declared file under the transfer's key."""

    code = "not_stored"


class FileTooBigForCloud(PayloadTooLarge):
    code = "file_too_big"


class TooManyTransfers(DroppError):
    status, code = 429, "too_many_transfers"
