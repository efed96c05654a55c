"""Settings, read once from the environment (and `.env`) and passed to `create_app`."""

import re
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

GIB = 1024**3

# Values that ship in examples; starting production with one of them is refused.
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "dev", "dropp"})
MIN_SECRET_KEY_LENGTH = 32


class ConfigError(Exception):
    """The settings cannot run Dropp; the message says what to change."""


class Settings(BaseSettings):
    # An empty value (`SECRET_KEY=` in .env) means unset, not "the empty string".
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, env_ignore_empty=True
    )

    data_dir: Path = Field(Path(".dropp"), validation_alias=AliasChoices("DROPP_DATA_DIR"))
    secret_key: SecretStr | None = None
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"

    database_url: str | None = None
    database_pool_size: int = Field(20, ge=1)
    database_max_overflow: int = Field(10, ge=0)

    s3_endpoint_url: str | None = None
    s3_public_endpoint_url: str | None = None
    s3_addressing_style: Literal["path", "virtual", "auto"] = "path"
    aws_s3_bucket: str = "dropp"
    aws_region: str = "us-east-1"
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None

    presign_ttl_seconds: int = Field(900, ge=1, le=7 * 24 * 3600)
    upload_post_ttl_seconds: int = Field(3600, ge=1, le=7 * 24 * 3600)
    # A single S3 POST is capped at 5 GiB by S3 itself.
    max_upload_bytes: int = Field(5 * GIB, ge=0, le=5 * GIB)

    access_token_ttl_seconds: int = Field(900, ge=60)
    refresh_token_ttl_seconds: int = Field(30 * 24 * 3600, ge=60)

    @property
    def embedded(self) -> bool:
        """True when Dropp must run its own PostgreSQL (and SeaweedFS unless S3 is configured)."""
        return self.database_url is None

    @property
    def embedded_storage(self) -> bool:
        return self.embedded and self.s3_endpoint_url is None

    @property
    def public_endpoint_url(self) -> str | None:
        return self.s3_public_endpoint_url or self.s3_endpoint_url

    @property
    def async_database_url(self) -> str:
        if self.database_url is None:
            raise ConfigError("DATABASE_URL is not set and the embedded stack is not running.")
        scheme, sep, rest = self.database_url.partition("://")
        if scheme in {"postgres", "postgresql"}:
            scheme = "postgresql+asyncpg"
        # Managed PostgreSQL hands out libpq's `sslmode=`; asyncpg calls it `ssl=`.
        rest = re.sub(r"([?&])sslmode=", r"\1ssl=", rest)
        return f"{scheme}{sep}{rest}"

    def require_database(self) -> None:
        if self.database_url is None:
            raise ConfigError(
                "DATABASE_URL is not set. Run `dropp serve` without it to use the embedded stack."
            )

    def require_runnable(self) -> None:
        """Refuse settings that would run an insecure or half-configured server."""
        self.require_database()
        key = self.secret_key.get_secret_value() if self.secret_key else ""
        if key.lower() in PLACEHOLDER_SECRETS or len(key) < MIN_SECRET_KEY_LENGTH:
            raise ConfigError(
                "SECRET_KEY is missing, an example value, or shorter than "
                f"{MIN_SECRET_KEY_LENGTH} characters. Generate one with: "
                'python -c "import secrets; print(secrets.token_urlsafe(48))"'
            )
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ConfigError("Set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither.")
