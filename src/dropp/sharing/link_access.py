"""What a correct link password grants: a signed, expiring pass for that link only.

The pass is `<expiry>.<HMAC>`, keyed by SECRET_KEY and bound to the link's id, its token and
its password hash, so it opens no other link, and stops working if the link were re-made or
its password changed. It holds nothing secret and nothing about the password; it goes back
as an HttpOnly cookie scoped to the link's path, or in an `X-Share-Access` header.
"""

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from dropp.core.config import Settings
from dropp.sharing.models import ShareLink

ACCESS_COOKIE = "dropp_share_access"
ACCESS_HEADER = "X-Share-Access"
# Longer than any pass this server makes: anything else is refused before it is checked.
MAX_ACCESS_LENGTH = 128


def _key(settings: Settings) -> bytes:
    assert settings.secret_key is not None
    return hmac.new(
        settings.secret_key.get_secret_value().encode(), b"dropp share access v1", hashlib.sha256
    ).digest()


def _signature(settings: Settings, link: ShareLink, expires: int) -> str:
    message = "\x00".join(
        (str(link.id), link.token_digest.hex(), link.password_hash or "", str(expires))
    )
    digest = hmac.new(_key(settings), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def grant(settings: Settings, link: ShareLink, now: datetime | None = None) -> tuple[str, datetime]:
    """A pass for `link` and when it ends: SHARE_UNLOCK_TTL_SECONDS from now, or the link's
    own expiry if that comes first."""
    moment = now or datetime.now(UTC)
    ends = moment + timedelta(seconds=settings.share_unlock_ttl_seconds)
    if link.expires_at is not None and link.expires_at < ends:
        ends = link.expires_at
    expires = int(ends.timestamp())
    return f"{expires}.{_signature(settings, link, expires)}", datetime.fromtimestamp(expires, UTC)


def admits(settings: Settings, link: ShareLink, value: str | None) -> bool:
    """Whether `value` is an unexpired pass this server made for `link`."""
    if not value or len(value) > MAX_ACCESS_LENGTH:
        return False
    expires_text, _, signature = value.partition(".")
    if not expires_text.isdigit():
        return False
    expires = int(expires_text)
    if expires <= datetime.now(UTC).timestamp():
        return False
    return hmac.compare_digest(_signature(settings, link, expires), signature)
