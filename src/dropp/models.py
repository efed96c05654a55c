"""Every feature's tables on one metadata, for Alembic."""

from dropp.auth.models import (
    AuthorizationCode,
    DeviceAuthorization,
    EmailToken,
    Identity,
    RefreshToken,
    SignIn,
    User,
    WebSession,
)
from dropp.core.db import Base
from dropp.downloads.models import Download
from dropp.events.models import AccountEvent
from dropp.file_requests.models import FileRequest
from dropp.files.models import FileRevision, Node, UploadPart
from dropp.idempotency.models import IdempotencyKey
from dropp.p2p.models import Transfer, TransferMessage
from dropp.sharing.models import ShareGrant, ShareLink
from dropp.sync.models import Change

__all__ = [
    "AccountEvent",
    "AuthorizationCode",
    "Base",
    "Change",
    "DeviceAuthorization",
    "Download",
    "EmailToken",
    "FileRequest",
    "FileRevision",
    "IdempotencyKey",
    "Identity",
    "Node",
    "RefreshToken",
    "ShareGrant",
    "ShareLink",
    "SignIn",
    "Transfer",
    "TransferMessage",
    "UploadPart",
    "User",
    "WebSession",
]
