from dropp.core.errors import PayloadTooLarge


class QuotaExceeded(PayloadTooLarge):
    """The problem body carries `used`, `reserved`, `quota` and `requested`, in bytes."""

    code = "quota_exceeded"
