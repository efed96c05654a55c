from datetime import date

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from dropp.auth.schemas import UserRead

# The largest value the bigint column holds.
MAX_QUOTA_BYTES = 2**63 - 1


class UserUpdate(BaseModel):
    """What an admin may change of an account; an absent field is left as it is."""

    model_config = ConfigDict(extra="forbid")

    role: str | None = Field(None, min_length=1, max_length=63, description="One of ROLES.")
    is_active: bool | None = Field(
        None, description="false signs the account out everywhere and refuses its sign-ins."
    )
    # Absent leaves the quota as it is; null returns the account to DEFAULT_QUOTA_BYTES.
    quota_bytes: int | None = Field(
        None,
        ge=0,
        le=MAX_QUOTA_BYTES,
        strict=True,
        description="Storage quota in bytes; null: DEFAULT_QUOTA_BYTES applies.",
    )


class UserPage(BaseModel):
    users: list[UserRead]
    next_cursor: str | None


class AdminCreate(BaseModel):
    """`dropp users create-admin`: the operator vouches for the address."""

    email: EmailStr = Field(max_length=320)
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
