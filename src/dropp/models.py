"""Every feature's tables on one metadata, for Alembic."""

from dropp.auth.models import RefreshToken, User
from dropp.core.db import Base
from dropp.files.models import FileRevision, Node

__all__ = ["Base", "FileRevision", "Node", "RefreshToken", "User"]
