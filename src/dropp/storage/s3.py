"""The S3 adapter: presigned transfers, multipart uploads, object inspection and deletion.
Knows nothing of the DB."""

import base64
from collections.abc import AsyncIterator, Sequence
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
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef, ObjectIdentifierTypeDef
else:
    S3Client = Any

# The most one CopyObject may copy; larger objects are copied in ranges of this size.
COPY_PART_BYTES = 5 * 1024**3
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})
NO_SUCH_UPLOAD = "NoSuchUpload"
# What CompleteMultipartUpload answers when the parts are not what it is told they are.
PART_REFUSALS = frozenset({"BadDigest", "InvalidPart", "InvalidPartOrder", "EntityTooSmall"})

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


class PartsRefused(StorageError):
    """Storage refused to assemble a multipart upload from the parts it was given."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


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
    # Storage's SHA-256 of the object, base64, when it keeps one and was asked for it. For a
    # multipart object it is the composite `<base64>-<part count>`.
    checksum_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class StoredPart:
    part_number: int
    etag: str
    size: int


@dataclass(frozen=True, slots=True)
class PartToAssemble:
    part_number: int
    etag: str
    sha256: bytes | None


def b64_sha256(digest: bytes) -> str:
    """The form S3 takes a SHA-256 in (`x-amz-checksum-sha256`)."""
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """One version (or delete marker) of a key, as listed by storage."""

    key: str
    version_id: str
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class MultipartUploadInfo:
    """A multipart upload storage holds open, with parts not yet assembled into an object."""

    key: str
    upload_id: str
    initiated: datetime


DOWNLOAD_CACHE_CONTROL = "private, no-store"


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
        self,
        key: str,
        *,
        min_size: int,
        max_size: int,
        content_type: str,
        expires_in: int,
        sha256: bytes | None = None,
    ) -> PresignedPost:
        """A form that can put exactly this key, this size range and this type, until it expires.

        With `sha256`, storage also refuses bytes with another SHA-256 (400 BadDigest).
        """
        fields = {"key": key, "Content-Type": content_type}
        conditions: list[Any] = [
            ["eq", "$key", key],
            ["content-length-range", min_size, max_size],
            ["eq", "$Content-Type", content_type],
        ]
        if sha256 is not None:
            # SeaweedFS needs only the checksum field; AWS also wants the algorithm named.
            checksum = b64_sha256(sha256)
            fields |= {"x-amz-checksum-algorithm": "SHA256", "x-amz-checksum-sha256": checksum}
            conditions += [
                ["eq", "$x-amz-checksum-algorithm", "SHA256"],
                ["eq", "$x-amz-checksum-sha256", checksum],
            ]
        return await self.post_forms.sign(fields, conditions, expires_in)

    async def create_multipart(self, key: str, *, content_type: str, checksums: bool) -> str:
        """Start a multipart upload of `key`; returns storage's upload id.

        With `checksums`, every part must carry its SHA-256 and storage keeps the composite
        SHA-256 of the part hashes, which `head(..., checksum=True)` reports.
        """
        try:
            if checksums:
                started = await self.client.create_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    ContentType=content_type,
                    ChecksumAlgorithm="SHA256",
                )
            else:
                started = await self.client.create_multipart_upload(
                    Bucket=self.bucket, Key=key, ContentType=content_type
                )
        except (ClientError, BotoCoreError) as error:
            raise StorageError(f"starting a multipart upload of {key} failed: {error}") from error
        return started["UploadId"]

    async def presign_part(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        *,
        size: int,
        sha256: bytes,
        expires_in: int,
    ) -> tuple[str, dict[str, str]]:
        """A PUT URL for one part of exactly `size` bytes hashing to `sha256`, and the headers
        the client must send with it.

        `content-length` and `x-amz-checksum-sha256` are signed headers: a body of another
        length fails the signature (SignatureDoesNotMatch), bytes of that length with another
        hash get BadDigest, so storage never holds more for a part than its plan says.
        """
        checksum = b64_sha256(sha256)
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "UploadId": upload_id,
            "PartNumber": part_number,
            "ContentLength": size,
            "ChecksumSHA256": checksum,
            "ChecksumAlgorithm": "SHA256",
        }
        url = await self.signer.generate_presigned_url(
            "upload_part", Params=params, ExpiresIn=expires_in
        )
        # Content-Length is not listed: HTTP clients set it from the body (browsers refuse to
        # set it by hand), and the signature holds it to `size`.
        return url, {"x-amz-checksum-sha256": checksum, "x-amz-sdk-checksum-algorithm": "SHA256"}

    async def list_parts(self, key: str, upload_id: str) -> list[StoredPart] | None:
        """The parts storage holds for this upload, by number; None once it is completed or
        aborted."""
        # A part number sent twice is one part, the newest. SeaweedFS lists both sends (a
        # client that crashed re-sends parts whose first PUT was still landing), and
        # counting both would fail the upload's size check.
        newest: dict[int, tuple[Any, StoredPart]] = {}
        paginator = self.client.get_paginator("list_parts")
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Key=key, UploadId=upload_id):
                for p in page.get("Parts", []):
                    part = StoredPart(p["PartNumber"], p["ETag"].strip('"'), p["Size"])
                    when = p.get("LastModified")
                    seen = newest.get(part.part_number)
                    if seen is None or when is None or seen[0] is None or when >= seen[0]:
                        newest[part.part_number] = (when, part)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == NO_SUCH_UPLOAD:
                return None
            raise StorageError(f"listing the parts of {key} failed: {error}") from error
        return [newest[number][1] for number in sorted(newest)]

    async def complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[PartToAssemble]
    ) -> None:
        """Assemble the object from these parts; PartsRefused if storage disagrees about them
        (a part's checksum, its ETag, or a part under the minimum size)."""
        assembled: list[CompletedPartTypeDef] = []
        for part in parts:
            entry: CompletedPartTypeDef = {"PartNumber": part.part_number, "ETag": part.etag}
            if part.sha256 is not None:
                entry["ChecksumSHA256"] = b64_sha256(part.sha256)
            assembled.append(entry)
        try:
            await self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": assembled},
            )
        except ClientError as error:
            details = error.response.get("Error", {})
            code = details.get("Code", "")
            if code in PART_REFUSALS:
                raise PartsRefused(code, details.get("Message", "")) from error
            raise StorageError(
                f"completing the multipart upload of {key} failed: {error}"
            ) from error

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
            # Storage serves headers stored from upload-form fields no policy covers; these
            # override them, and a URL that grants access is never kept by shared caches.
            "ResponseCacheControl": DOWNLOAD_CACHE_CONTROL,
        }
        if version_id is not None:
            params["VersionId"] = version_id
        return await self.signer.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires_in
        )

    async def head(
        self, key: str, version_id: str | None = None, *, checksum: bool = False
    ) -> ObjectHead | None:
        """What storage holds under `key` (latest version unless given), or None; with
        `checksum`, also the SHA-256 storage keeps for it, if any."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id is not None:
            params["VersionId"] = version_id
        if checksum:
            params["ChecksumMode"] = "ENABLED"
        try:
            found = await self.client.head_object(**params)
        except ClientError as error:
            if _is_missing(error):
                return None
            raise StorageError(f"HEAD {key} failed: {error}") from error
        return ObjectHead(
            size=found["ContentLength"],
            etag=found["ETag"].strip('"'),
            version_id=found.get("VersionId"),
            content_type=found.get("ContentType"),
            checksum_sha256=found.get("ChecksumSHA256"),
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

    async def iter_key_versions(self, prefix: str) -> AsyncIterator[list[StoredVersion]]:
        """Every version and delete marker under `prefix`, one list per key, in key order."""
        paginator = self.client.get_paginator("list_object_versions")
        current: list[StoredVersion] = []
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            entries = [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            for entry in sorted(entries, key=lambda e: e.get("Key", "")):
                version = StoredVersion(
                    key=entry.get("Key", ""),
                    version_id=entry.get("VersionId", "null"),
                    last_modified=entry.get("LastModified", datetime.now(UTC)),
                )
                # A key's versions may straddle two pages: yield it once its last one is seen.
                if current and current[0].key != version.key:
                    yield current
                    current = []
                current.append(version)
        if current:
            yield current

    async def key_versions(self, key: str) -> list[StoredVersion]:
        """Every version and delete marker of exactly `key`."""
        found: list[StoredVersion] = []
        async for versions in self.iter_key_versions(key):
            found.extend(v for v in versions if v.key == key)
        return found

    async def delete_versions(self, versions: list[StoredVersion]) -> None:
        """Delete exactly these versions; one already gone is not an error."""
        for start in range(0, len(versions), 1000):
            batch: list[ObjectIdentifierTypeDef] = [
                {"Key": v.key, "VersionId": v.version_id} for v in versions[start : start + 1000]
            ]
            answer = await self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
            )
            errors = [e for e in answer.get("Errors", []) if e.get("Code") not in MISSING_CODES]
            if errors:
                raise StorageError(f"deleting {len(batch)} object versions failed: {errors}")

    async def list_multipart_uploads(self, prefix: str) -> list[MultipartUploadInfo]:
        """Multipart uploads started under `prefix` and neither completed nor aborted."""
        found: list[MultipartUploadInfo] = []
        paginator = self.client.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            found.extend(
                MultipartUploadInfo(
                    key=upload.get("Key", ""),
                    upload_id=upload.get("UploadId", ""),
                    initiated=upload.get("Initiated", datetime.now(UTC)),
                )
                for upload in page.get("Uploads", [])
            )
        return found

    async def abort_multipart_upload(self, key: str, upload_id: str) -> bool:
        """Abort a multipart upload and drop its parts; False if storage no longer has it."""
        try:
            await self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code", "") in {"NoSuchUpload", *MISSING_CODES}:
                return False
            raise StorageError(f"aborting multipart upload of {key} failed: {error}") from error
        return True

    async def copy_version(
        self,
        source_key: str,
        version_id: str,
        key: str,
        *,
        size: int,
        content_type: str,
        part_size: int = COPY_PART_BYTES,
    ) -> ObjectHead:
        """Copy one stored version to a new key inside storage (no bytes pass through here);
        returns the new object. Above `part_size` (5 GiB, storage's limit for one copy) it is
        a multipart copy of `part_size` ranges."""
        source: dict[str, str] = {"Bucket": self.bucket, "Key": source_key, "VersionId": version_id}
        try:
            if size <= part_size:
                await self.client.copy_object(
                    Bucket=self.bucket,
                    Key=key,
                    CopySource=source,  # type: ignore[arg-type]
                    ContentType=content_type,
                    MetadataDirective="REPLACE",
                )
            else:
                await self._copy_in_parts(source, key, size, content_type, part_size)
        except ClientError as error:
            raise StorageError(f"copying {source_key} to {key} failed: {error}") from error
        # The new key has this one version: what storage reports is what to pin.
        found = await self.head(key)
        if found is None:
            raise StorageError(f"copying {source_key} to {key} left no object")
        return found

    async def _copy_in_parts(
        self, source: dict[str, str], key: str, size: int, content_type: str, part_size: int
    ) -> None:
        """A copy too large for one CopyObject: a multipart upload of source ranges."""
        upload_id = await self.create_multipart(key, content_type=content_type, checksums=False)
        parts: list[PartToAssemble] = []
        try:
            for number, start in enumerate(range(0, size, part_size), start=1):
                end = min(start + part_size, size) - 1
                part = await self.client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=source,  # type: ignore[arg-type]
                    CopySourceRange=f"bytes={start}-{end}",
                )
                etag = part.get("CopyPartResult", {}).get("ETag", "")
                parts.append(PartToAssemble(number, etag.strip('"'), None))
            await self.complete_multipart(key, upload_id, parts)
        except BaseException:
            await self.abort_multipart_upload(key, upload_id)
            raise

    async def delete_version(self, key: str, version_id: str) -> None:
        """Delete exactly this version of `key`; one already gone is not an error."""
        try:
            await self.client.delete_object(Bucket=self.bucket, Key=key, VersionId=version_id)
        except ClientError as error:
            if not _is_missing(error):
                raise StorageError(
                    f"deleting {key} version {version_id} failed: {error}"
                ) from error


def _client_config(settings: Settings) -> Config:
    return Config(
        signature_version="s3v4",
        s3={"addressing_style": settings.s3_addressing_style},
        # Bounded, so frozen storage costs a request a 503 within seconds (an outage error,
        # see core.errors) instead of botocore's minute-long waits and retries.
        retries={"max_attempts": settings.storage_max_attempts, "mode": "standard"},
        max_pool_connections=64,
        connect_timeout=settings.storage_connect_timeout_seconds,
        read_timeout=settings.storage_read_timeout_seconds,
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
