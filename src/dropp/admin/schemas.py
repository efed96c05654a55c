from datetime import date
from typing import Annotated

from pydantic import BaseModel, Field

from dropp.auth.schemas import UserRead
from dropp.core.emails import EmailAddress
from dropp.core.openapi import ENUM_SETTING
from dropp.core.schemas import AS_WHOLE_NUMBER, RequestBody

# 1 EiB: beyond any store, well inside the bigint column, and exact as a JSON number
# (2**63 - 1 is not: a client's double rounds it to 2**63, past what the column holds).
MAX_QUOTA_BYTES = 2**60


class UserUpdate(RequestBody):
    """What an admin may change of an account; an absent field is left as it is."""

    role: str | None = Field(
        None,
        min_length=1,
        max_length=63,
        description="One of ROLES.",
        json_schema_extra={ENUM_SETTING: "role_names"},
    )
    is_active: bool | None = Field(
        None, description="false signs the account out everywhere and refuses its sign-ins."
    )
    # Absent leaves the quota as it is; null returns the account to DEFAULT_QUOTA_BYTES.
    quota_bytes: Annotated[int, Field(ge=0, le=MAX_QUOTA_BYTES), AS_WHOLE_NUMBER] | None = Field(
        None,
        description="Storage quota in bytes; null: DEFAULT_QUOTA_BYTES applies.",
    )


class UserPage(BaseModel):
    users: list[UserRead]
    next_cursor: str | None


class AdminCreate(RequestBody):
    """`dropp users create-admin`: the operator vouches for the address."""

    email: EmailAddress
    # None: the account signs in through the OpenID provider only.
    password: str | None = Field(None, min_length=8, max_length=1024)


class AccountTotals(BaseModel):
    total: int
    active: int
    verified: int = Field(description="Accounts whose email address is verified.")
    by_role: dict[str, int]


class FileTotalsRead(BaseModel):
    live: int = Field(description="Files with a completed upload, outside the trash.")
    in_trash: int


class DayStats(BaseModel):
    date: date
    uploads: int = Field(description="Uploads completed that UTC day.")
    upload_bytes: int
    downloads: int = Field(
        description="Download URLs issued that day: owners, share links and shared users."
    )
    new_accounts: int


class StatsRead(BaseModel):
    accounts: AccountTotals
    files: FileTotalsRead
    bytes_stored: int = Field(
        description="Bytes of every kept revision, trash included (the sum of account usage)."
    )
    days: list[DayStats] = Field(description="Oldest first, today (UTC) last.")
