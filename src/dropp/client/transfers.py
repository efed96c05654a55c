"""Moving file bytes between this machine and a server's storage, verified and resumable.

Bytes never pass through the API: it signs URLs, and the bytes go straight to storage. Every
upload declares its SHA-256, so storage refuses other bytes; every download is hashed before
it takes the target's name. A multipart upload keeps its ids in a `ResumeStore`, so a rerun
after a crash (or Ctrl-C) asks storage which parts it holds and sends only the others; a
download goes to `.<name>.dropp-part` beside its target and a rerun continues it with a Range
request.
"""

import asyncio
import hashlib
import json
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import httpx

from dropp.client.api import Api, retry_after
from dropp.client.config import write_private
from dropp.client.errors import ApiError, ClientError, ServerUnavailable
from dropp.client.hashing import (
    MIB,
    Content,
    FileChanged,
    FileHash,
    hash_file,
    hash_parts,
    part_count_for,
    part_size_for,
)
from dropp.client.remote import clean_path

# The server's default MULTIPART_THRESHOLD_BYTES. Which scheme an upload uses decides the hash
# it declares at init, so the client chooses: above this it asks for multipart; a server with
# a lower threshold that answers multipart anyway gets the upload again, as multipart.
MULTIPART_THRESHOLD = 64 * MIB
# What one call of the batch routes and of POST /upload/{id}/parts takes.
BATCH_SIZE = 100
PARTS_PER_CALL = 100
# Batches in flight at once: while the server completes one, it starts the next, and storage
# takes the next one's bytes.
BATCHES_AT_ONCE = 2
# Parts of one file in flight at once. More only queue at storage: on the embedded stack a
# 256 MiB file went out in 1.7 s four parts at a time and in 1.9 s eight at a time.
PARTS_AT_ONCE = 4
# Part hashes declared in the first part-URL call, ahead of the parts asked for then; capped
# so the request stays well below the server's body limit.
DECLARE_AHEAD = 1000
CHUNK = MIB
# Tries of one storage request when the connection fails or storage answers 5xx.
STORAGE_ATTEMPTS = 4
# Fresh URLs asked for one part (or one download) that storage keeps refusing as expired.
URL_ATTEMPTS = 3
# A part URL this close to its expiry is replaced before it is used.
URL_MARGIN_SECONDS = 60
# How long a retry waits for the first request with its Idempotency-Key to finish.
IN_FLIGHT_ATTEMPTS = 10
# A part in flight when a run died may still land: the kernel sends what the dead process
# left in its socket buffers. A rerun this soon after waits for such parts before sending
# them again, since a part stored twice can break the upload's completion.
SETTLE_SECONDS = 15.0
SETTLE_QUIET_SECONDS = 3.0


class Progress(Protocol):
    """What the CLI's progress bars (or nothing) implement."""

    def add(self, name: str, total: int) -> int: ...

    def advance(self, task: int, amount: int) -> None: ...

    def done(self, task: int) -> None: ...


class ResumeStore(Protocol):
    """In-flight transfer state, keyed by a string."""

    def load(self, key: str) -> dict[str, Any] | None: ...

    def save(self, key: str, state: dict[str, Any]) -> None: ...

    def drop(self, key: str) -> None: ...


class TransferError(ClientError):
    """Bytes could not be moved or did not verify: the message says which file and why."""


class FileResumeStore:
    """One private JSON file per key in `directory` (what `dropp put` uses)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, key: str) -> Path:
        # Keys hold paths and URLs: hashed, they make a safe file name of fixed length.
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"

    def load(self, key: str) -> dict[str, Any] | None:
        try:
            saved = json.loads(self._path(key).read_text("utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        if not isinstance(saved, dict) or saved.get("key") != key:
            return None
        state = saved.get("state")
        return state if isinstance(state, dict) else None

    def save(self, key: str, state: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(self._path(key), json.dumps({"key": key, "state": state}) + "\n")

    def drop(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


@dataclass(frozen=True)
class Uploaded:
    """The server's answer, reduced; `sent` is how many bytes this call sent to storage
    (0 when the server had them already, less than `size` when a multipart upload resumed)."""

    file_id: str
    revision_id: str | None
    name: str
    path: str
    size: int
    content_hash: str | None
    conflict: dict[str, Any] | None
    in_trash: bool = False
    sent: int = 0

    @classmethod
    def of(cls, file: dict[str, Any], sent: int = 0) -> "Uploaded":
        return cls(
            file_id=str(file.get("id") or file["file_id"]),
            revision_id=file.get("revision_id"),
            name=file["name"],
            path=file["path"],
            size=file.get("size") or 0,
            content_hash=file.get("content_hash"),
            conflict=file.get("conflict"),
            in_trash=bool(file.get("in_trash", False)),
            sent=sent,
        )


@dataclass(frozen=True)
class UploadRequest:
    source: Path
    folder: str  # the remote folder's path, "/" for the top level
    name: str
    file_hash: FileHash | None = None  # computed if None
    base_revision: str | None = None
    conflict: str = "keep_both"
    device: str | None = None

    @property
    def remote_path(self) -> str:
        return clean_path(f"{self.folder}/{self.name}")


# --- storage requests ---------------------------------------------------------------------


def _counter(progress: Progress | None, task: int) -> Callable[[int], None]:
    if progress is None:
        return lambda amount: None
    return lambda amount: progress.advance(task, amount)


async def _file_chunks(
    path: Path, offset: int, length: int, sent: Callable[[int], None]
) -> AsyncIterator[bytes]:
    try:
        handle = await asyncio.to_thread(open, path, "rb")
    except OSError as error:
        raise TransferError(f"{path}: {error.strerror or error}") from error
    try:
        handle.seek(offset)
        remaining = length
        while remaining:
            try:
                chunk = await asyncio.to_thread(handle.read, min(CHUNK, remaining))
            except OSError as error:
                raise TransferError(f"{path}: {error.strerror or error}") from error
            if not chunk:
                raise TransferError(f"{path} got shorter while it was being sent: run again.")
            remaining -= len(chunk)
            sent(len(chunk))
            yield chunk
    finally:
        handle.close()


async def _to_storage(
    api: Api,
    method: str,
    url: str,
    headers: dict[str, str],
    body: Callable[[Callable[[int], None]], AsyncIterator[bytes]],
    advance: Callable[[int], None],
) -> httpx.Response:
    """One request carrying file bytes, tried again when the connection fails or storage
    answers 5xx; progress given for an attempt that failed is taken back."""
    for attempt in range(STORAGE_ATTEMPTS):
        sent = 0

        def count(amount: int) -> None:
            nonlocal sent
            sent += amount
            advance(amount)

        try:
            response = await api.storage.request(method, url, headers=headers, content=body(count))
        except httpx.TransportError as error:
            advance(-sent)
            if attempt + 1 >= STORAGE_ATTEMPTS:
                raise ServerUnavailable(
                    f"Storage could not be reached: {error or type(error).__name__}."
                ) from error
            await asyncio.sleep(retry_after(None, attempt))
            continue
        if response.status_code < 300:
            return response
        advance(-sent)
        if response.status_code >= 500 and attempt + 1 < STORAGE_ATTEMPTS:
            await asyncio.sleep(retry_after(response, attempt))
            continue
        return response
    raise AssertionError("unreachable")


def _storage_refusal(response: httpx.Response, what: str) -> TransferError:
    text = response.text
    if "BadDigest" in text or "XAmzContentSHA256Mismatch" in text:
        return TransferError(f"{what} changed while it was being sent: run again.")
    return TransferError(f"Storage refused {what}: {response.status_code} {text[:200]}")


def _expired(response: httpx.Response) -> bool:
    # Storage answers an expired signature 403 AccessDenied; a body that does not match the
    # signed length is 403 SignatureDoesNotMatch, which a new URL would not cure.
    return response.status_code == 403 and "SignatureDoesNotMatch" not in response.text


async def _together(*work: Coroutine[Any, Any, None]) -> None:
    """Run side by side; the first failure stops the others and is raised as itself (not in
    an ExceptionGroup, so the CLI still sees a ClientError)."""
    tasks = [asyncio.ensure_future(item) for item in work]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


# --- upload -------------------------------------------------------------------------------


async def _hash(path: Path, on_part: Callable[[int, bytes], None] | None = None) -> FileHash:
    try:
        return await asyncio.to_thread(hash_file, path, None, on_part)
    except FileChanged as error:
        raise TransferError(f"{path} changed while it was read: run again.") from error
    except OSError as error:
        raise TransferError(f"{path}: {error.strerror or error}") from error


def _init_body(
    request: UploadRequest, size: int, digest: bytes | None, *, multipart: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "filename": request.name,
        "size": size,
        "folder": clean_path(request.folder),
        "conflict": request.conflict,
    }
    if digest is not None:
        body["sha256"] = digest.hex()
    if multipart:
        body["multipart"] = True
    if request.device is not None:
        body["device"] = request.device
    if request.base_revision is not None:
        body["base_revision"] = request.base_revision
    return body


async def _post_once(api: Api, path: str, body: dict[str, Any], key: str) -> Any:
    """A POST with an Idempotency-Key, waiting while the first request with it still runs."""
    for attempt in range(IN_FLIGHT_ATTEMPTS):
        try:
            return await api.post(path, body, headers={"Idempotency-Key": key})
        except ApiError as error:
            if error.code != "idempotency_key_in_flight" or attempt + 1 >= IN_FLIGHT_ATTEMPTS:
                raise
            await asyncio.sleep(1.0)
    raise AssertionError("unreachable")


async def _file_answer(api: Api, file_id: str) -> Uploaded:
    return Uploaded.of(await api.get(f"/files/{file_id}"))


async def _cancel(api: Api, started: dict[str, Any]) -> None:
    try:
        await api.delete(
            f"/upload/{started['file_id']}", params={"upload_id": started["upload_id"]}
        )
    except ApiError as error:
        if error.status not in (404, 409):
            raise


async def _complete(api: Api, file_id: str, upload_id: str, sent: int) -> Uploaded:
    answer = await api.post(
        f"/upload/{file_id}/complete", {"upload_id": upload_id}, idempotent=True
    )
    return Uploaded.of(answer, sent)


def _form_body(fields: dict[str, str], boundary: str) -> tuple[bytes, bytes]:
    """The multipart/form-data around the file: storage wants the file as the last field."""
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value.encode()
        + b"\r\n"
        for name, value in fields.items()
    )
    head += (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="blob"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head, f"\r\n--{boundary}--\r\n".encode()


async def post_form(
    api: Api, source: Path, size: int, form: dict[str, Any], advance: Callable[[int], None]
) -> None:
    """POST `size` bytes of `source` to a presigned form, streamed from disk."""
    boundary = secrets.token_hex(16)
    head, tail = _form_body(form["fields"], boundary)

    async def body(sent: Callable[[int], None]) -> AsyncIterator[bytes]:
        yield head
        async for chunk in _file_chunks(source, 0, size, sent):
            yield chunk
        yield tail

    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + size + len(tail)),
    }
    response = await _to_storage(api, "POST", form["url"], headers, body, advance)
    if response.status_code >= 300:
        raise _storage_refusal(response, str(source))


async def upload(
    api: Api,
    request: UploadRequest,
    *,
    progress: Progress | None = None,
    resume: ResumeStore | None = None,
    parallel: int = PARTS_AT_ONCE,
) -> Uploaded:
    """Upload one file: one POST to storage, or in parts above the multipart threshold,
    `parallel` parts at a time."""
    file_hash = request.file_hash
    if file_hash is None:
        size = _size(request.source)
        if size > MULTIPART_THRESHOLD and not _resumable(api, request, resume):
            hashes = _PartHashes.hashing(request.source, size)
            return await _upload_multipart(api, request, hashes, progress, resume, parallel)
        file_hash = await _hash(request.source)
    request = replace(request, file_hash=file_hash)
    if file_hash.size > MULTIPART_THRESHOLD:
        hashes = _PartHashes.of(file_hash)
        return await _upload_multipart(api, request, hashes, progress, resume, parallel)
    started = await _post_once(
        api,
        "/upload/",
        _init_body(request, file_hash.size, file_hash.sha256, multipart=False),
        str(uuid.uuid4()),
    )
    if started["status"] == "complete":
        done = await _file_answer(api, str(started["file_id"]))
        _finished(progress, request, file_hash.size)
        return done
    if started["upload"]["kind"] == "multipart":
        await _cancel(api, started)
        hashes = _PartHashes.of(file_hash)
        return await _upload_multipart(api, request, hashes, progress, resume, parallel)
    task = progress.add(request.remote_path, file_hash.size) if progress else 0
    await post_form(
        api, request.source, file_hash.size, started["upload"], _counter(progress, task)
    )
    done = await _complete(
        api, str(started["file_id"]), str(started["upload_id"]), sent=file_hash.size
    )
    if progress is not None:
        progress.done(task)
    return done


def _finished(progress: Progress | None, request: UploadRequest, size: int) -> None:
    """A file the server holds already: shown as done at once."""
    if progress is not None:
        task = progress.add(request.remote_path, size)
        progress.advance(task, size)
        progress.done(task)


def _resume_key(api: Api, request: UploadRequest) -> str:
    return f"upload {api.server} {request.remote_path} {request.source.resolve()}"


def _size(source: Path) -> int:
    try:
        return source.stat().st_size
    except OSError as error:
        raise TransferError(f"{source}: {error.strerror or error}") from error


def _resumable(api: Api, request: UploadRequest, resume: ResumeStore | None) -> bool:
    """Whether an earlier run left this upload to resume (its parts are then checked
    against the file's hashes, so they are needed first)."""
    return resume is not None and resume.load(_resume_key(api, request)) is not None


def _identity(source: Path, hashes: "_PartHashes") -> dict[str, Any]:
    return {"size": hashes.size, "mtime_ns": os.stat(source).st_mtime_ns}


def _same(saved: dict[str, Any] | None, now: dict[str, Any]) -> bool:
    """The same dict, but for a `sha256` only one of them has: an upload started while its
    file was still being hashed resumes once it has been."""
    if saved is None:
        return False
    return {k: v for k, v in saved.items() if k != "sha256"} == {
        k: v for k, v in now.items() if k != "sha256"
    } and saved.get("sha256", now.get("sha256")) == now.get("sha256", saved.get("sha256"))


class _PartHashes:
    """Each part's SHA-256 as soon as it is known: all at once from a finished hash, or one
    by one from a pass over the parts beside the upload, so the first parts go out while the
    last are still being read. That pass hashes only the parts (the server makes the content
    hash from them): on two cores a whole-file hash beside it slowed the parts as much as it
    saved."""

    def __init__(self, size: int, part_size: int) -> None:
        self.size = size
        self.part_size = part_size
        self.count = part_count_for(size, part_size)
        self.known: dict[int, bytes] = {}
        self.whole: FileHash | None = None
        self.arrived = asyncio.Event()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Marked retrieved: an upload that fails first must not also log an unread error.
        self.done.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._task: asyncio.Future[None] | None = None

    @classmethod
    def of(cls, file_hash: FileHash) -> "_PartHashes":
        hashes = cls(file_hash.size, file_hash.part_size)
        hashes.known = dict(enumerate(file_hash.part_hashes, start=1))
        hashes.whole = file_hash
        hashes.done.set_result(None)
        return hashes

    @classmethod
    def hashing(cls, source: Path, size: int) -> "_PartHashes":
        hashes = cls(size, part_size_for(size))
        loop = asyncio.get_running_loop()

        def heard(number: int, digest: bytes) -> None:
            loop.call_soon_threadsafe(hashes._heard, number, digest)

        async def run() -> None:
            try:
                await asyncio.to_thread(hash_parts, source, hashes.part_size, heard)
            except FileChanged:
                hashes.done.set_exception(
                    TransferError(f"{source} changed while it was read: run again.")
                )
            except OSError as error:
                hashes.done.set_exception(TransferError(f"{source}: {error.strerror or error}"))
            else:
                hashes.done.set_result(None)
            hashes.arrived.set()

        hashes._task = asyncio.ensure_future(run())
        return hashes

    def _heard(self, number: int, digest: bytes) -> None:
        self.known[number] = digest
        self.arrived.set()

    @property
    def failed(self) -> bool:
        return self.done.done() and self.done.exception() is not None

    async def get(self, number: int) -> bytes:
        while number not in self.known:
            if self.done.done():
                await self.done  # raises what stopped the pass
                raise TransferError(f"part {number} has no hash")
            self.arrived.clear()
            await self.arrived.wait()
        return self.known[number]

    def length(self, number: int) -> int:
        if not 1 <= number <= self.count:
            return -1
        return min(self.part_size, self.size - (number - 1) * self.part_size)


class _PartUrls:
    """Signed PUT URLs for the parts still to send, asked for 100 at a time as the senders
    reach them, so none sits long enough to expire unused."""

    def __init__(
        self,
        api: Api,
        file_id: str,
        upload_id: str,
        hashes: _PartHashes,
        order: list[int],
        *,
        declare_ahead: bool,
    ) -> None:
        self.api = api
        self.file_id = file_id
        self.upload_id = upload_id
        self.hashes = hashes
        self.unasked = list(order)
        self.declare_ahead = declare_ahead
        self.urls: dict[int, tuple[dict[str, Any], datetime]] = {}
        self.lock = asyncio.Lock()

    async def get(self, number: int, *, fresh: bool = False) -> dict[str, Any]:
        async with self.lock:
            cached = self.urls.pop(number, None)
            if cached is not None and not fresh:
                part, expires_at = cached
                if (expires_at - datetime.now(UTC)).total_seconds() > URL_MARGIN_SECONDS:
                    return part
            await self.hashes.get(number)
            known = self.hashes.known
            # Only parts whose hashes are known yet: each URL is signed for its part's hash.
            others = (n for n in self.unasked if n != number and n in known)
            asked = [number, *others][:PARTS_PER_CALL]
            self.unasked = [n for n in self.unasked if n not in asked]
            declared = set(asked)
            if self.declare_ahead:
                declared |= {n for n in range(1, DECLARE_AHEAD + 1) if n in known}
                self.declare_ahead = False
            answer = await self.api.post(
                f"/upload/{self.file_id}/parts",
                {
                    "upload_id": self.upload_id,
                    "part_numbers": asked,
                    "sha256": {str(n): known[n].hex() for n in sorted(declared)},
                },
                idempotent=True,
            )
            expires_at = datetime.fromisoformat(answer["expires_at"])
            for part in answer["parts"]:
                self.urls[part["part_number"]] = (part, expires_at)
            part, _ = self.urls.pop(number)
            return part


async def _stored_parts(
    api: Api, file_id: str, upload_id: str, hashes: _PartHashes
) -> set[int] | None:
    """The parts storage holds in full; None when the upload can no longer take parts."""
    try:
        listing = await api.get(f"/upload/{file_id}/parts", params={"upload_id": upload_id})
    except ApiError as error:
        if error.code == "upload_complete":
            # It completed before the crash was noticed: completing again answers the same.
            return set(range(1, hashes.count + 1))
        if error.status in (404, 409):
            return None
        raise
    return {
        p["part_number"] for p in listing["parts"] if hashes.length(p["part_number"]) == p["size"]
    }


async def _settled_parts(api: Api, state: dict[str, Any], hashes: _PartHashes) -> set[int] | None:
    """The parts storage holds, once the parts the last run was sending have landed, or
    have stopped landing."""
    in_flight = set(state.get("sending", []))
    until = float(state.get("updated_at", 0)) + SETTLE_SECONDS
    stored = await _stored_parts(api, state["file_id"], state["upload_id"], hashes)
    quiet_since = time.monotonic()
    while (
        stored is not None
        and in_flight - stored
        and time.time() < until
        and time.monotonic() - quiet_since < SETTLE_QUIET_SECONDS
    ):
        await asyncio.sleep(0.5)
        again = await _stored_parts(api, state["file_id"], state["upload_id"], hashes)
        if again != stored:
            quiet_since = time.monotonic()
        stored = again
    return stored


async def _send_parts(
    api: Api,
    request: UploadRequest,
    hashes: _PartHashes,
    urls: _PartUrls,
    missing: list[int],
    advance: Callable[[int], None],
    parallel: int,
    sending: Callable[[int, bool], None],
) -> int:
    """PUT the missing parts, `parallel` at a time; the bytes sent. `sending` hears when
    each part starts (True) and is stored (False)."""
    queue = list(reversed(missing))
    sent = 0

    async def put(number: int) -> None:
        nonlocal sent
        sending(number, True)
        offset = (number - 1) * hashes.part_size
        length = hashes.length(number)
        for attempt in range(URL_ATTEMPTS):
            part = await urls.get(number, fresh=attempt > 0)
            headers = {**part["headers"], "Content-Length": str(length)}

            def body(count: Callable[[int], None]) -> AsyncIterator[bytes]:
                return _file_chunks(request.source, offset, length, count)

            response = await _to_storage(api, "PUT", part["url"], headers, body, advance)
            if response.status_code < 300:
                sent += length
                sending(number, False)
                return
            if not _expired(response):
                break
        raise _storage_refusal(response, f"part {number} of {request.source}")

    async def sender() -> None:
        while queue:
            await put(queue.pop())

    await _together(*(sender() for _ in range(min(parallel, len(missing)))))
    return sent


async def _upload_multipart(
    api: Api,
    request: UploadRequest,
    hashes: _PartHashes,
    progress: Progress | None,
    resume: ResumeStore | None,
    parallel: int,
) -> Uploaded:
    key = _resume_key(api, request)
    identity = _identity(request.source, hashes)
    whole = hashes.whole
    if whole is not None:
        identity["sha256"] = whole.sha256.hex()
    body = _init_body(request, hashes.size, whole.parts_hash if whole else None, multipart=True)
    state = resume.load(key) if resume is not None else None
    if (
        state is None
        or not _same(state.get("file"), identity)
        or not _same(state.get("body"), body)
    ):
        # A changed file (or another request for it) starts over: its parts would not fit.
        state = {"file": identity, "body": body, "idempotency_key": str(uuid.uuid4())}
    stored: set[int] | None = None
    if "upload_id" in state:
        stored = await _settled_parts(api, state, hashes)
        if stored is None:
            state = {"file": identity, "body": body, "idempotency_key": str(uuid.uuid4())}

    def save() -> None:
        if resume is not None:
            state["updated_at"] = time.time()
            resume.save(key, state)

    # Saved before init, so a crash before the answer is written replays the same upload.
    save()
    if stored is None:
        started = await _post_once(api, "/upload/", state["body"], state["idempotency_key"])
        if started["status"] == "complete":
            if resume is not None:
                resume.drop(key)
            done = await _file_answer(api, str(started["file_id"]))
            _finished(progress, request, hashes.size)
            return done
        plan = started["upload"]
        if (plan["kind"], plan.get("part_size")) != ("multipart", hashes.part_size):
            await _cancel(api, started)
            raise TransferError(f"The server planned {request.source}'s parts unlike the client.")
        state |= {"file_id": str(started["file_id"]), "upload_id": str(started["upload_id"])}
        save()
        stored = set()

    missing = [n for n in range(1, hashes.count + 1) if n not in stored]
    task = progress.add(request.remote_path, hashes.size) if progress else 0
    advance = _counter(progress, task)
    advance(sum(hashes.length(n) for n in stored))
    file_id, upload_id = state["file_id"], state["upload_id"]
    urls = _PartUrls(api, file_id, upload_id, hashes, missing, declare_ahead=not stored)
    in_flight: set[int] = set()

    def sending(number: int, started: bool) -> None:
        (in_flight.add if started else in_flight.discard)(number)
        state["sending"] = sorted(in_flight)
        save()

    sent = 0
    for attempt in range(2):
        try:
            sent += await _send_parts(
                api, request, hashes, urls, missing, advance, parallel, sending
            )
            # The hash pass ends well before the last part: a file that changed while it
            # was read is given up here, before its parts become a revision.
            await hashes.done
        except TransferError:
            if hashes.failed:
                await _cancel(api, {"file_id": file_id, "upload_id": upload_id})
                if resume is not None:
                    resume.drop(key)
            raise
        try:
            done = await _complete(api, file_id, upload_id, sent)
            break
        except ApiError as error:
            if error.code == "upload_incomplete" and attempt == 0:
                # Storage lost a part it had listed (or never kept one it acknowledged).
                stored = await _stored_parts(api, file_id, upload_id, hashes) or set()
                missing = [n for n in range(1, hashes.count + 1) if n not in stored]
                urls.unasked = list(missing)
                continue
            # Any other 409 means the server aborted the upload (a wrong size or hash):
            # nothing is left to resume.
            if error.status == 409 and resume is not None:
                resume.drop(key)
            raise
    if resume is not None:
        resume.drop(key)
    if progress is not None:
        progress.done(task)
    return done


# --- many uploads -------------------------------------------------------------------------

Outcome = Uploaded | ApiError | TransferError


async def _one(
    api: Api,
    request: UploadRequest,
    progress: Progress | None,
    resume: ResumeStore | None,
    *,
    multipart: bool = False,
) -> Outcome:
    """One upload whose refusal is its result, not the end of the others."""
    try:
        if multipart and request.file_hash is not None:
            hashes = _PartHashes.of(request.file_hash)
            return await _upload_multipart(api, request, hashes, progress, resume, PARTS_AT_ONCE)
        return await upload(api, request, progress=progress, resume=resume)
    except (ApiError, TransferError) as error:
        return error


@dataclass(frozen=True)
class _Posted:
    index: int
    request: UploadRequest
    size: int
    started: dict[str, Any]
    task: int


async def _batch(
    api: Api,
    chunk: list[tuple[int, UploadRequest, FileHash]],
    results: list[Outcome | None],
    progress: Progress | None,
    resume: ResumeStore | None,
    parallel: int,
) -> None:
    """Up to 100 small files: one init call, their bytes to storage, one complete call."""
    items = [
        _init_body(request, file_hash.size, file_hash.sha256, multipart=False)
        for _, request, file_hash in chunk
    ]
    try:
        answer = await _post_once(api, "/upload/batch", {"items": items}, str(uuid.uuid4()))
    except ApiError as error:
        if error.status not in (404, 405):
            raise
        # A server from before the batch routes: the same uploads, one call each.
        await _each(api, chunk, results, progress, resume, parallel)
        return
    sending = asyncio.Semaphore(parallel)
    posted: list[_Posted] = []
    known: list[tuple[int, UploadRequest, FileHash, str]] = []
    larger: list[tuple[int, UploadRequest, dict[str, Any]]] = []

    async def send(index: int, request: UploadRequest, size: int, started: dict[str, Any]) -> None:
        async with sending:
            task = progress.add(request.remote_path, size) if progress else 0
            try:
                form = started["upload"]
                await post_form(api, request.source, size, form, _counter(progress, task))
            except TransferError as error:
                results[index] = error
                return
        posted.append(_Posted(index, request, size, started, task))

    senders = []
    for (index, request, file_hash), item in zip(chunk, answer["items"], strict=True):
        if item["status"] >= 400:
            results[index] = ApiError(item["status"], item["error"])
            continue
        started = item["upload"]
        if started["status"] == "complete":
            known.append((index, request, file_hash, str(started["file_id"])))
        elif started["upload"]["kind"] != "post":
            larger.append((index, request, started))
        else:
            senders.append(send(index, request, file_hash.size, started))
    await _together(*senders)

    posted.sort(key=lambda entry: entry.index)
    if posted:
        completed = await api.post(
            "/upload/batch/complete",
            {
                "items": [
                    {"file_id": str(p.started["file_id"]), "upload_id": str(p.started["upload_id"])}
                    for p in posted
                ]
            },
            idempotent=True,
        )
        for entry, item in zip(posted, completed["items"], strict=True):
            if item["status"] >= 400:
                results[entry.index] = ApiError(item["status"], item["error"])
                continue
            results[entry.index] = Uploaded.of(item["file"], sent=entry.size)
            if progress is not None:
                progress.done(entry.task)
    for index, request, file_hash, file_id in known:
        results[index] = await _file_answer(api, file_id)
        _finished(progress, request, file_hash.size)
    for index, request, started in larger:
        # This server's multipart threshold is lower than the client's.
        await _cancel(api, started)
        results[index] = await _one(api, request, progress, resume, multipart=True)


async def _each(
    api: Api,
    chunk: list[tuple[int, UploadRequest, FileHash]],
    results: list[Outcome | None],
    progress: Progress | None,
    resume: ResumeStore | None,
    parallel: int,
) -> None:
    running = asyncio.Semaphore(parallel)

    async def one(index: int, request: UploadRequest) -> None:
        async with running:
            results[index] = await _one(api, request, progress, resume)

    await _together(*(one(index, request) for index, request, _ in chunk))


async def upload_many(
    api: Api,
    requests: Sequence[UploadRequest],
    *,
    progress: Progress | None = None,
    resume: ResumeStore | None = None,
    parallel: int = 8,
) -> list[Outcome]:
    """Upload many files, results in order: small ones 100 to an init call and a complete
    call (BATCHES_AT_ONCE batches at a time), their bytes sent `parallel` at a time per
    batch; multipart ones one by one beside them, PARTS_AT_ONCE parts at a time. A refusal or
    a file that changed is that item's result; an unreachable server raises."""
    results: list[Outcome | None] = [None] * len(requests)
    small: list[tuple[int, UploadRequest]] = []
    large: list[tuple[int, UploadRequest]] = []
    for index, request in enumerate(requests):
        try:
            size = request.file_hash.size if request.file_hash else request.source.stat().st_size
        except OSError as error:
            results[index] = TransferError(f"{request.source}: {error.strerror or error}")
            continue
        (large if size > MULTIPART_THRESHOLD else small).append((index, request))

    batches = asyncio.Semaphore(BATCHES_AT_ONCE)

    async def smalls(batch: list[tuple[int, UploadRequest]]) -> None:
        async with batches:
            chunk: list[tuple[int, UploadRequest, FileHash]] = []
            for index, request in batch:
                try:
                    file_hash = request.file_hash or await _hash(request.source)
                except TransferError as error:
                    results[index] = error
                    continue
                chunk.append((index, replace(request, file_hash=file_hash), file_hash))
            if chunk:
                await _batch(api, chunk, results, progress, resume, parallel)

    async def larges() -> None:
        for index, request in large:
            results[index] = await _one(api, request, progress, resume)

    await _together(
        larges(),
        *(smalls(small[start : start + BATCH_SIZE]) for start in range(0, len(small), BATCH_SIZE)),
    )
    return [result for result in results if result is not None]


# --- download -----------------------------------------------------------------------------


def part_file(target: Path) -> Path:
    """Where a download's bytes gather until they are verified."""
    return target.with_name(f".{target.name}.dropp-part")


async def _revision_content(api: Api, file_id: str, revision_id: str) -> Content:
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = await api.get(f"/files/{file_id}/revisions", params=params)
        for revision in page["revisions"]:
            if str(revision["revision_id"]) == revision_id:
                return Content.remote(revision["size"], revision["content_hash"])
        cursor = page["next_cursor"]
        if not cursor:
            raise TransferError(f"The file {file_id} has no revision {revision_id}.")


async def _fetch(
    api: Api, signer: str, temp: Path, size: int, advance: Callable[[int], None]
) -> None:
    """Storage's bytes into `temp`, continuing what it holds with a Range request; fresh
    URLs when one expires, the request tried again when the connection fails."""
    # Appending: what the file holds is the prefix already received.
    temp.parent.mkdir(parents=True, exist_ok=True)
    handle = await asyncio.to_thread(open, temp, "ab")
    try:
        offset = os.fstat(handle.fileno()).st_size
        if offset > size:
            offset = 0
        handle.truncate(offset)
        advance(offset)
        await _receive(api, signer, handle, offset, size, advance)
        handle.flush()
        await asyncio.to_thread(os.fsync, handle.fileno())
    finally:
        handle.close()


async def download_refused(response: httpx.Response, failures: int, attempts: int) -> int:
    """Storage answered a download with an error (its body read): the failures counted so far
    plus this one, once waited for, if it may pass (a 5xx, with attempts left); else
    TransferError with storage's words."""
    if response.status_code >= 500 and failures + 1 < attempts:
        await asyncio.sleep(retry_after(response, failures + 1))
        return failures + 1
    raise TransferError(
        f"Storage refused the download: {response.status_code} {response.text[:200]}"
    )


async def _receive(
    api: Api,
    signer: str,
    handle: BinaryIO,
    offset: int,
    size: int,
    advance: Callable[[int], None],
) -> None:
    url: str | None = None
    expired = failures = 0
    while offset < size:
        if url is None:
            url = str((await api.get(signer, params={"redirect": "false"}))["url"])
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        before = offset
        try:
            async with api.storage.stream("GET", url, headers=headers) as response:
                if response.status_code >= 300:
                    await response.aread()
                    if _expired(response) and expired + 1 < URL_ATTEMPTS:
                        expired += 1
                        url = None
                        continue
                    failures = await download_refused(response, failures, STORAGE_ATTEMPTS)
                    continue
                if response.status_code == 200 and offset:
                    # Storage ignored the range and sends the whole file: start over.
                    handle.truncate(0)
                    advance(-offset)
                    offset = before = 0
                async for chunk in response.aiter_bytes(CHUNK):
                    await asyncio.to_thread(handle.write, chunk)
                    offset += len(chunk)
                    advance(len(chunk))
                    if offset > size:
                        break
        except httpx.TransportError as error:
            handle.flush()
            failures += 1
            if failures >= STORAGE_ATTEMPTS:
                raise ServerUnavailable(
                    f"Storage could not be reached: {error or type(error).__name__}."
                ) from error
            await asyncio.sleep(retry_after(None, failures))
            continue
        if offset > size:
            break
        if offset == before:
            failures += 1
            if failures >= STORAGE_ATTEMPTS:
                raise TransferError("Storage sent less than the file's size.")


async def download(
    api: Api,
    file_id: str,
    target: Path,
    *,
    expected: Content | None = None,
    progress: Progress | None = None,
    revision_id: str | None = None,
) -> FileHash:
    """Download a file's current bytes (or one revision's) to `target`, verified against
    the server's content hash (or `expected`) before they take its name."""
    if revision_id is None:
        file = await api.get(f"/files/{file_id}")
        if file.get("revision_id") is None:
            raise TransferError(f"{file['path']} has no completed upload yet.")
        # Pinned to the revision whose hash this is, so a newer upload cannot slip in between.
        revision_id = str(file["revision_id"])
        remote = Content.remote(file["size"], file.get("content_hash"))
    else:
        remote = expected or await _revision_content(api, file_id, revision_id)
    want = expected or remote
    temp = part_file(target)
    task = progress.add(str(target), want.size) if progress else 0
    signer = f"/files/{file_id}/revisions/{revision_id}/download"
    try:
        await _fetch(api, signer, temp, want.size, _counter(progress, task))
    except TransferError as error:
        raise TransferError(f"{target}: {error}") from error
    except OSError as error:
        raise TransferError(f"{target}: {error.strerror or error}") from error
    try:
        found = await asyncio.to_thread(hash_file, temp)
    except FileChanged as error:
        temp.unlink(missing_ok=True)
        raise TransferError(f"{temp} changed while it was verified: run again.") from error
    # A file uploaded without a hash has none to check: its size is all there is.
    if found.size != want.size or (want.hashes and not found.content.same(want)):
        temp.unlink(missing_ok=True)
        raise TransferError(
            f"{target}: the bytes received do not match the server's hash; they were "
            "discarded: run again."
        )
    try:
        os.replace(temp, target)
    except OSError as error:
        raise TransferError(f"{target}: {error.strerror or error}") from error
    if progress is not None:
        progress.done(task)
    return found
