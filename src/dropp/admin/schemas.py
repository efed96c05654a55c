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
