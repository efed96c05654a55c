"""What each role may upload. Read from settings, so it imports nothing else of Dropp."""

from pydantic import BaseModel, ConfigDict, Field, field_validator

ADMIN = "admin"
MEMBER = "member"
BUILT_IN_ROLES = (ADMIN, MEMBER)
ROLE_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"


class UploadPolicy(BaseModel):
    """One role's upload rules. An empty list allows everything of its kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    can_upload: bool = True
    # Lower-case, without the dot: "pptx", "tar.gz".
    extensions: tuple[str, ...] = ()
    # Exact media types ("application/pdf") or whole families ("image/*").
    content_types: tuple[str, ...] = ()
    max_file_bytes: int | None = Field(None, ge=0)

    @field_validator("extensions")
    @classmethod
    def _normalize_extensions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(extension.strip().lower().lstrip(".") for extension in value)

    @field_validator("content_types")
    @classmethod
    def _normalize_content_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(content_type.strip().lower() for content_type in value)
