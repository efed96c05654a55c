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
from dropp.files.models import FileRevision, Node, UploadPart
from dropp.idempotency.models import IdempotencyKey
from dropp.sync.models import Change

__all__ = [
    "AuthorizationCode",
    "Base",
    "Change",
    "DeviceAuthorization",
    "EmailToken",
    "FileRevision",
    "IdempotencyKey",
    "Identity",
    "Node",
    "RefreshToken",
    "SignIn",
    "UploadPart",
    "User",
    "WebSession",
]
