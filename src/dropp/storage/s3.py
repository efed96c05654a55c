"""The S3 adapter: presigned transfers, object inspection and deletion. Knows nothing of the DB."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aioboto3
from aiobotocore.credentials import AioCredentials
from aiobotocore.session import get_session
from botocore.auth import ISO8601, S3SigV4PostAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from dropp.core.config import Settings

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import ObjectIdentifierTypeDef
else:
    S3Client = Any

MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})

# Types a browser would render or execute if served as-is; downloads hand them out as bytes.
ACTIVE_CONTENT_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "text/ecmascript",
        "application/ecmascript",
    }
)

CORS_RULES: list[dict[str, Any]] = [
    {
        "AllowedMethods": ["GET", "HEAD", "POST", "PUT"],
        "AllowedOrigins": ["*"],
        "AllowedHeaders": ["*"],
        "ExposeHeaders": ["ETag", "x-amz-version-id"],
        "MaxAgeSeconds": 3600,
    }
]


class StorageError(Exception):
    """Storage answered something Dropp cannot work with, or did not answer."""


@dataclass(frozen=True, slots=True)
class PresignedPost:
    url: str
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class ObjectHead:
    size: int
    etag: str
    version_id: str | None
    content_type: str | None


def attachment_disposition(filename: str) -> str:
    """RFC 6266 `attachment` with an ASCII fallback and the exact UTF-8 name in `filename*`."""
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\%' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def safe_download_type(content_type: str | None) -> str:
    if content_type is None:
        return "application/octet-stream"
    essence = content_type.split(";", 1)[0].strip().lower()
    return "application/octet-stream" if essence in ACTIVE_CONTENT_TYPES else content_type


def _is_missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code", "") in MISSING_CODES


class PostFormSigner:
    """Signs POST policies for one bucket with botocore's SigV4 POST signer.

    The client's `generate_presigned_post` resolves the endpoint and runs its event hooks on
    every call, six times the cost of the signature itself and a tenth of an upload-init's CPU.
    A form's URL depends only on the bucket, so it is learned once, from the client.
    """

    def __init__(self, url: str, bucket: str, credentials: AioCredentials, region: str) -> None:
        self.url = url
        self.bucket = bucket
        self.credentials = credentials
        self.region = region

    @classmethod
    async def for_bucket(
        cls, signer: S3Client, bucket: str, credentials: AioCredentials
    ) -> "PostFormSigner":
        probe = await signer.generate_presigned_post(Bucket=bucket, Key="probe")
        return cls(probe["url"], bucket, credentials, signer.meta.region_name)

    async def sign(
        self, fields: dict[str, str], conditions: list[Any], expires_in: int
    ) -> PresignedPost:
        # Frozen per form, because refreshable credentials may rotate between two reads.
        credentials = await self.credentials.get_frozen_credentials()
        expiration = datetime.now(UTC) + timedelta(seconds=expires_in)
        request = AWSRequest(method="POST", url=self.url)
        request.context["s3-presign-post-fields"] = signed_fields = dict(fields)
        request.context["s3-presign-post-policy"] = {
            "expiration": expiration.strftime(ISO8601),
            "conditions": [{"bucket": self.bucket}, *conditions],
        }
        S3SigV4PostAuth(credentials, "s3", self.region).add_auth(request)
        return PresignedPost(url=self.url, fields=signed_fields)


class Storage:
    """One bucket. `client` talks to storage; `signer` signs URLs for the endpoint clients reach."""

    def __init__(
        self, client: S3Client, signer: S3Client, post_forms: PostFormSigner, bucket: str
    ) -> None:
        self.client = client
        self.signer = signer
        self.post_forms = post_forms
        self.bucket = bucket

    async def presign_post(
        self, key: str, *, min_size: int, max_size: int, content_type: str, expires_in: int
    ) -> PresignedPost:
        """A form that can put exactly this key, this size range and this type, until it expires."""
        return await self.post_forms.sign(
            {"key": key, "Content-Type": content_type},
            [
                ["eq", "$key", key],
                ["content-length-range", min_size, max_size],
                ["eq", "$Content-Type", content_type],
            ],
            expires_in,
        )

    async def presign_get(
        self,
        key: str,
        *,
        version_id: str | None,
        filename: str,
        content_type: str | None,
        expires_in: int,
    ) -> str:
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "ResponseContentDisposition": attachment_disposition(filename),
            "ResponseContentType": safe_download_type(content_type),
        }
        if version_id is not None:
            params["VersionId"] = version_id
        return await self.signer.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires_in
        )

    async def head(self, key: str, version_id: str | None = None) -> ObjectHead | None:
        """What storage holds under `key` (latest version unless given), or None."""
        try:
            if version_id is None:
                found = await self.client.head_object(Bucket=self.bucket, Key=key)
            else:
                found = await self.client.head_object(
                    Bucket=self.bucket, Key=key, VersionId=version_id
                )
        except ClientError as error:
            if _is_missing(error):
                return None
            raise StorageError(f"HEAD {key} failed: {error}") from error
        return ObjectHead(
            size=found["ContentLength"],
            etag=found["ETag"].strip('"'),
            version_id=found.get("VersionId"),
            content_type=found.get("ContentType"),
        )

    async def delete(self, key: str) -> None:
        """Delete every version of `key`, so no old bytes stay reachable or billed."""
        objects: list[ObjectIdentifierTypeDef] = []
        paginator = self.client.get_paginator("list_object_versions")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=key):
            for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                if entry.get("Key") == key:
                    objects.append({"Key": key, "VersionId": entry.get("VersionId", "null")})
        if not objects:
            # Unversioned bucket, or nothing there: a plain delete is idempotent either way.
            await self.client.delete_object(Bucket=self.bucket, Key=key)
            return
        for start in range(0, len(objects), 1000):
            answer = await self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": objects[start : start + 1000], "Quiet": True}
            )
            if answer.get("Errors"):
                raise StorageError(f"deleting {key} failed: {answer['Errors']}")

    async def check(self) -> None:
        """Raise StorageError unless the bucket answers and keeps versions."""
        try:
            await self.client.head_bucket(Bucket=self.bucket)
            versioning = await self.client.get_bucket_versioning(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as error:
            raise StorageError(f"bucket {self.bucket!r} does not answer: {error}") from error
        if versioning.get("Status") != "Enabled":
            raise StorageError(f"bucket {self.bucket!r} does not have versioning enabled")

    async def ensure_bucket(self) -> None:
        """Create the bucket if needed, with versioning and the CORS rule browsers need."""
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            await self.client.create_bucket(Bucket=self.bucket)
        await self.client.put_bucket_versioning(
            Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"}
        )
        await self.client.put_bucket_cors(
            Bucket=self.bucket,
            CORSConfiguration={"CORSRules": CORS_RULES},  # type: ignore[typeddict-item]
        )


def _client_config(settings: Settings) -> Config:
    return Config(
        signature_version="s3v4",
        s3={"addressing_style": settings.s3_addressing_style},
        retries={"max_attempts": 3, "mode": "standard"},
        max_pool_connections=64,
        connect_timeout=5,
        read_timeout=30,
    )


@asynccontextmanager
async def open_storage(settings: Settings) -> AsyncIterator[Storage]:
    """Long-lived S3 clients for the app's lifetime."""
    core_session = get_session()
    session = aioboto3.Session(
        botocore_session=core_session,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=(
            settings.aws_secret_access_key.get_secret_value()
            if settings.aws_secret_access_key
            else None
        ),
        region_name=settings.aws_region,
    )
    config = _client_config(settings)
    async with AsyncExitStack() as stack:
        client: S3Client = await stack.enter_async_context(
            session.client("s3", endpoint_url=settings.s3_endpoint_url, config=config)
        )
        signer = client
        if settings.public_endpoint_url != settings.s3_endpoint_url:
            signer = await stack.enter_async_context(
                session.client("s3", endpoint_url=settings.public_endpoint_url, config=config)
            )
        credentials = await core_session.get_credentials()
        if credentials is None:
            raise StorageError(
                "No S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or give the process an AWS credential source."
            )
        post_forms = await PostFormSigner.for_bucket(signer, settings.aws_s3_bucket, credentials)
        yield Storage(client, signer, post_forms, settings.aws_s3_bucket)
