"""Settings, read once from the environment (and `.env`) and passed to `create_app`."""

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from dropp.roles.policy import ADMIN, BUILT_IN_ROLES, MEMBER, ROLE_NAME_PATTERN, UploadPolicy

MIB = 1024**2
GIB = 1024**3
TIB = 1024**4
GOOGLE_DISCOVERY_URL = "https://accounts.google.com/.well-known/openid-configuration"

# Values that ship in examples; starting production with one of them is refused.
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "dev", "dropp"})
MIN_SECRET_KEY_LENGTH = 32


class IceServer(BaseModel):
    """One STUN or TURN server, as WebRTC's RTCIceServer spells it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    urls: list[Annotated[str, Field(pattern=r"^(stun|stuns|turn|turns):[^\s]+$")]] = Field(
        min_length=1
    )
    username: str | None = None
    credential: str | None = None

    @field_validator("urls", mode="before")
    @classmethod
    def _one_url(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


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
    # "json": one JSON object a line, for a log pipeline; "text" for people.
    log_format: Literal["text", "json"] = "text"

    database_url: str | None = None
    database_pool_size: int = Field(20, ge=1)
    database_max_overflow: int = Field(10, ge=0)
    # Outages: every database and storage call is bounded, so a stopped or frozen dependency
    # costs a request a 503 (with Retry-After) within seconds, never a pooled connection held.
    # How long opening a database connection, or waiting for one from the pool, may take.
    db_connect_timeout_seconds: float = Field(5.0, gt=0, le=300)
    # The longest one SQL statement may run (asyncpg's command_timeout and the server's
    # statement_timeout).
    db_statement_timeout_seconds: float = Field(15.0, gt=0, le=3600)
    # Storage (S3): connecting, waiting for an answer, and how many attempts one call makes.
    storage_connect_timeout_seconds: float = Field(3.0, gt=0, le=300)
    storage_read_timeout_seconds: float = Field(10.0, gt=0, le=3600)
    storage_max_attempts: int = Field(2, ge=1, le=10)
    # The Retry-After (seconds) of a 503 answered while a dependency is down.
    outage_retry_after_seconds: int = Field(5, ge=1, le=3600)

    s3_endpoint_url: str | None = None
    s3_public_endpoint_url: str | None = None
    s3_addressing_style: Literal["path", "virtual", "auto"] = "path"
    aws_s3_bucket: str = "dropp"
    aws_region: str = "us-east-1"
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None

    presign_ttl_seconds: int = Field(900, ge=1, le=7 * 24 * 3600)
    upload_post_ttl_seconds: int = Field(3600, ge=1, le=7 * 24 * 3600)
    # Download URLs handed out through a share link: short, since anyone holding one can use it.
    share_link_url_ttl_seconds: int = Field(60, ge=1, le=3600)
    # How long a share link's correct password lets its holder in.
    share_unlock_ttl_seconds: int = Field(3600, ge=60, le=7 * 24 * 3600)
    # Multipart uploads reach S3's limit of 5 TiB per object; a single POST stops at 5 GiB.
    max_upload_bytes: int = Field(5 * TIB, ge=0, le=5 * TIB)
    # Files above this size (or any, on request) upload in parts; at most 5 GiB, S3's single
    # POST limit.
    multipart_threshold_bytes: int = Field(64 * MIB, ge=5 * MIB, le=5 * GIB)
    # How long a multipart upload may take, from init to complete: large files take long, and
    # a client resumes after a reboot. Each part URL still lives UPLOAD_POST_TTL_SECONDS.
    multipart_upload_ttl_seconds: int = Field(7 * 24 * 3600, ge=60, le=30 * 24 * 3600)
    # Pending uploads one account may hold at once, and the bytes they may hold (declared
    # sizes, or a sizeless form's most): without a quota nothing else stops one account from
    # signing forms without end. Uploads through the account's file requests and its editors'
    # uploads count too. Over either: 429 `too_many_pending_uploads`.
    max_pending_uploads: int = Field(1000, ge=1, le=1_000_000)
    # The largest request body the API reads (JSON and forms; file bytes go to storage), in
    # bytes: larger ones are answered 413 `request_body_too_large` before any of it is parsed.
    max_request_body_bytes: int = Field(2 * MIB, ge=1024, le=64 * MIB)
    max_pending_bytes: int = Field(TIB, ge=1, le=1024 * TIB)

    # Storage per account, counting every kept revision and pending reservations. None: no
    # quota. An admin can set another for one account.
    default_quota_bytes: int | None = Field(None, ge=0)

    # The sweeper (in every API process, and `dropp sweep`): how often it runs (0: never in
    # the API), and how long past its window an upload or an unreferenced object is left alone.
    sweep_interval_seconds: int = Field(300, ge=0)
    sweep_grace_seconds: int = Field(3600, ge=0)
    # Files are removed this many days after upload, unless the upload asks for less. None: kept.
    file_expiry_days: int | None = Field(None, ge=1)

    # --- Namespace and sync ---
    # Trashed files and folders can be restored this long, then the sweeper purges them.
    trash_retention_days: int = Field(30, ge=1)
    # Old revisions of a file kept beside the current one: at most this many (None: no count
    # limit), and none older than this many days (None: no age limit). The current is kept.
    revision_keep_count: int | None = Field(100, ge=0)
    revision_keep_days: int | None = Field(None, ge=1)
    # The change feed keeps this many days; an older cursor gets 410 and re-snapshots.
    change_retention_days: int = Field(30, ge=1)
    # The longest a long-poll may wait before answering "no changes".
    longpoll_max_seconds: int = Field(120, ge=1, le=600)

    # --- Live events (GET /events, docs/events.md) ---
    # Streams one account may hold open in each API process.
    events_max_connections: int = Field(10, ge=1, le=1000)
    # A comment line this often keeps proxies from closing an idle stream.
    events_heartbeat_seconds: int = Field(15, ge=1, le=300)
    # The longest one stream runs before the server ends it (the client reconnects with its
    # Last-Event-ID): long-lived connections then spread again over API processes.
    events_max_seconds: int = Field(3600, ge=1, le=24 * 3600)
    # Upload, share and transfer events are kept this long for streams that reconnect.
    events_keep_hours: int = Field(24, ge=1, le=24 * 30)

    # --- Peer-to-peer transfer (docs/p2p.md) ---
    # RTCIceServer objects (STUN/TURN) given to both peers, as JSON. Empty: host candidates
    # only, which reach peers on the same machine or network.
    p2p_ice_servers: list[IceServer] = Field(default_factory=list)
    # How long a code waits for its receiver.
    p2p_code_ttl_seconds: int = Field(600, ge=30, le=24 * 3600)
    # Joins per client address: what makes a 12-digit code unguessable.
    p2p_join_rate: str = "10/minute"
    # Unfinished transfers one account may hold.
    p2p_max_open_transfers: int = Field(5, ge=1, le=1000)
    # The largest signaling message: an SDP with many candidates is a few KiB.
    p2p_max_message_bytes: int = Field(64 * 1024, ge=4096, le=1024 * 1024)
    # The largest file the cloud fallback stores (a single POST: at most 5 GiB).
    p2p_cloud_max_bytes: int = Field(5 * GIB, ge=0, le=5 * GIB)
    # How long the fallback's upload form is valid, and its stored file is kept for the
    # receiver to fetch.
    p2p_cloud_upload_seconds: int = Field(3600, ge=60, le=7 * 24 * 3600)

    # --- Operations ---
    # /metrics answers this machine, and others that send it as a bearer token. None: this
    # machine only.
    metrics_token: SecretStr | None = None

    access_token_ttl_seconds: int = Field(900, ge=60)
    refresh_token_ttl_seconds: int = Field(30 * 24 * 3600, ge=60)

    # Where people and clients reach this API; links in emails and pages are built on it.
    public_url: str = "http://127.0.0.1:8000"

    # --- Sign-in with Google, or any OpenID Connect provider ---
    google_client_id: str | None = None
    google_client_secret: SecretStr | None = None
    # Dropp's own callback as registered with the provider (default: PUBLIC_URL + path).
    google_redirect_uri: str | None = None
    oidc_discovery_url: str = GOOGLE_DISCOVERY_URL
    # Where desktop clients may receive codes, comma-separated and matched exactly; a loopback
    # entry (http://127.0.0.1/<path>) matches that path on any port, as RFC 8252 requires.
    app_redirect_uri: Annotated[tuple[str, ...], NoDecode] = (
        "dropp://auth/callback",
        "http://127.0.0.1/callback",
    )
    authorization_code_ttl_seconds: int = Field(60, ge=5, le=60)
    sign_in_ttl_seconds: int = Field(600, ge=60, le=3600)
    web_session_ttl_seconds: int = Field(12 * 3600, ge=300)
    device_code_ttl_seconds: int = Field(600, ge=60, le=3600)
    device_poll_interval_seconds: int = Field(5, ge=1, le=60)

    # --- Email: verification and password reset ---
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # "starttls" upgrades a plain connection (port 587), "tls" starts encrypted (port 465).
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_from: str = "Dropp <no-reply@localhost>"
    smtp_timeout_seconds: float = Field(10.0, gt=0)
    require_email_verification: bool = True
    email_verification_ttl_seconds: int = Field(24 * 3600, ge=60)
    password_reset_ttl_seconds: int = Field(3600, ge=60)

    # --- Roles ---
    # Upload policies by role, as JSON. `admin` may do anything; `member` (the role of new
    # accounts) uploads anything unless given a policy here; other names define new roles.
    roles: dict[str, UploadPolicy] = Field(default_factory=dict)
    default_role: str = MEMBER

    # --- Rate limits (the `limits` library) ---
    rate_limit_storage_url: str = "memory://"
    rate_limit_per_ip: str = "30/minute"
    rate_limit_per_account: str = "10/minute"
    # Behind a reverse proxy: the proxy addresses or networks (comma-separated, or "*") whose
    # X-Forwarded-For and X-Forwarded-Proto are believed. Empty: nobody's, so a client cannot
    # pick the address its rate limits are counted under.
    forwarded_allow_ips: Annotated[tuple[str, ...], NoDecode] = ()

    # --- Sharing ---
    # Who may share a file or folder with a whole role (every account of it, in their shared
    # list and change feed): admins only, or every account.
    role_shares_by: Literal["admin", "everyone"] = "admin"

    # --- Names (docs/names.md) ---
    # Accept new names only Windows refuses (CON, NUL.txt, a:b, a trailing dot or space), for
    # servers no Windows desktop syncs with. Invisible characters and names differing only by
    # case stay refused.
    allow_windows_incompatible_names: bool = False

    @field_validator("app_redirect_uri", mode="before")
    @classmethod
    def _split_redirect_uris(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(uri.strip() for uri in value.split(",") if uri.strip())
        return value

    @field_validator("forwarded_allow_ips", mode="before")
    @classmethod
    def _split_forwarded_allow_ips(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(entry.strip() for entry in value.split(",") if entry.strip())
        if not isinstance(value, tuple | list):
            return value
        entries = []
        for entry in value:
            try:
                # Written as uvicorn compares them: networks with their host bits cleared.
                entries.append(
                    entry
                    if entry == "*" or "/" not in entry
                    else str(ipaddress.ip_network(entry, strict=False))
                )
                if entry != "*":
                    ipaddress.ip_network(entry, strict=False)
            except (ValueError, TypeError) as error:
                raise ValueError(
                    f"{entry!r} is not an IP address, a network (10.0.0.0/8) or *"
                ) from error
        return tuple(entries)

    @field_validator("roles")
    @classmethod
    def _check_roles(cls, value: dict[str, UploadPolicy]) -> dict[str, UploadPolicy]:
        for name in value:
            if not re.fullmatch(ROLE_NAME_PATTERN, name):
                raise ValueError(f"role name {name!r} must match {ROLE_NAME_PATTERN}")
            if name == ADMIN:
                raise ValueError("the admin role may do anything and takes no policy")
        return value

    @property
    def role_names(self) -> tuple[str, ...]:
        return (*BUILT_IN_ROLES, *(name for name in self.roles if name not in BUILT_IN_ROLES))

    def upload_policy(self, role: str) -> UploadPolicy:
        """The role's policy; a role no longer configured may not upload (fail closed)."""
        if role == ADMIN:
            return UploadPolicy()
        if role in self.roles:
            return self.roles[role]
        return UploadPolicy() if role == MEMBER else UploadPolicy(can_upload=False)

    @property
    def oidc_redirect_uri(self) -> str:
        return self.google_redirect_uri or f"{self.public_url.rstrip('/')}/auth/google/callback"

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
        if (self.google_client_id is None) != (self.google_client_secret is None):
            raise ConfigError("Set both GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET, or neither.")
        if self.default_role not in self.role_names:
            raise ConfigError(
                f"DEFAULT_ROLE {self.default_role!r} is not one of {', '.join(self.role_names)}."
            )
