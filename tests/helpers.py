"""Plain factories: accounts, uploads, the storage side a desktop client talks to, and
servers on loopback for tests that need real sockets."""

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import uvicorn
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.core.config import Settings
from dropp.embedded.seaweedfs import free_port
from dropp.main import create_app

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Account:
    email: str
    user_id: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def register_account(
    client: httpx.AsyncClient,
    email: str,
    password: str = PASSWORD,
    *,
    engine: AsyncEngine | None = None,
    role: str | None = None,
) -> Account:
    """Register through the API, then sign in. Given the database, the address is marked
    verified (and the role set) before signing in, so the tokens carry those claims."""
    registered = await client.post("/auth/register", json={"email": email, "password": password})
    assert registered.status_code == 201, registered.text
    # The answer names no account (it is the same for an address already in use): the id
    # comes from the database, or from signing in.
    if engine is not None:
        user_id = await user_id_of(engine, email)
        await set_user(engine, user_id, verified=True, role=role)
    else:
        assert role is None, "setting a role needs the database"
    tokens = await client.post("/auth/login", json={"email": email, "password": password})
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    if engine is None:
        me = await client.get("/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.status_code == 200, me.text
        user_id = me.json()["id"]
    return Account(email, user_id, body["access_token"], body["refresh_token"])


async def user_id_of(engine: AsyncEngine, email: str) -> str:
    """The id of the account using this address, straight from the database."""
    async with engine.connect() as connection:
        found = await connection.scalar(
            text("SELECT id FROM user_account WHERE email = :email"),
            {"email": email.strip().lower()},
        )
    assert found is not None, f"no account uses {email}"
    return str(found)


async def verified_account(
    client: httpx.AsyncClient, engine: AsyncEngine, email: str, role: str | None = None
) -> Account:
    """A signed-in account with a verified email and, if given, this role."""
    return await register_account(client, email, engine=engine, role=role)


async def set_user(
    engine: AsyncEngine, user_id: str, *, verified: bool = False, role: str | None = None
) -> None:
    """What only an operator or an email link could change, written straight to the database."""
    async with engine.begin() as connection:
        if verified:
            await connection.execute(
                text("UPDATE user_account SET email_verified_at = now() WHERE id = :id"),
                {"id": UUID(user_id)},
            )
        if role is not None:
            await connection.execute(
                text("UPDATE user_account SET role = :role WHERE id = :id"),
                {"id": UUID(user_id), "role": role},
            )


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """An RFC 9457 problem with this status and stable code; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert body["title"]
    assert body["detail"]
    return body


async def owned_nodes(engine: AsyncEngine, user_id: str) -> int:
    """Files and folders the account owns, straight from the database."""
    async with engine.connect() as connection:
        count = await connection.scalar(
            text("SELECT count(*) FROM node WHERE owner_id = :owner"), {"owner": UUID(user_id)}
        )
    return int(count or 0)


async def owned_revisions(engine: AsyncEngine, user_id: str, state: str | None = None) -> int:
    """Revisions of the account's files, only those in `state` if given, from the database."""
    query = (
        "SELECT count(*) FROM file_revision r JOIN node n ON n.id = r.node_id "
        "WHERE n.owner_id = :owner"
    )
    if state is not None:
        query += " AND r.state = :state"
    async with engine.connect() as connection:
        count = await connection.scalar(text(query), {"owner": UUID(user_id), "state": state})
    return int(count or 0)


async def start_upload(
    client: httpx.AsyncClient, account: Account, filename: str, **fields: Any
) -> dict[str, Any]:
    started = await client.post(
        "/upload/", json={"filename": filename, **fields}, headers=account.headers
    )
    assert started.status_code == 201, started.text
    body: dict[str, Any] = started.json()
    return body


async def post_form(
    web: httpx.AsyncClient,
    upload: dict[str, Any],
    data: bytes,
    *,
    fields: dict[str, str] | None = None,
    url: str | None = None,
) -> httpx.Response:
    """POST `data` to a presigned form exactly as `curl -F` would."""
    form = upload["upload"]
    return await web.post(
        url or form["url"],
        data=fields if fields is not None else form["fields"],
        files={"file": ("upload.bin", data)},
    )


async def complete(
    client: httpx.AsyncClient, account: Account, file_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/upload/{file_id}/complete", json=body or None, headers=account.headers
    )


async def upload_file(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    account: Account,
    filename: str,
    data: bytes,
    **fields: Any,
) -> dict[str, Any]:
    """The whole desktop flow: init, POST the bytes to storage, complete."""
    started = await start_upload(client, account, filename, size=len(data), **fields)
    posted = await post_form(web, started, data)
    assert posted.status_code in (200, 201, 204), posted.text
    completed = await complete(client, account, started["file_id"])
    assert completed.status_code == 200, completed.text
    body: dict[str, Any] = completed.json()
    return body


async def download_bytes(
    client: httpx.AsyncClient, web: httpx.AsyncClient, account: Account, file_id: str
) -> httpx.Response:
    signed = await client.get(f"/download/{file_id}", headers=account.headers)
    assert signed.status_code == 200, signed.text
    return await web.get(signed.json()["url"])


# --- multipart uploads and SHA-256 (what a desktop client computes on its side) -----------

MIB = 1024**2
# What `part_size_for` gives every file up to 78 GiB.
PART_SIZE = 8 * MIB


def sha256_hex(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def split_parts(data: bytes, part_size: int = PART_SIZE) -> list[bytes]:
    return [data[start : start + part_size] for start in range(0, len(data), part_size)] or [b""]


def parts_hash_hex(data: bytes, part_size: int = PART_SIZE) -> str:
    """The multipart content hash: SHA-256 over each part's SHA-256, in order."""
    import hashlib

    digests = b"".join(hashlib.sha256(part).digest() for part in split_parts(data, part_size))
    return hashlib.sha256(digests).hexdigest()


async def part_urls(
    client: httpx.AsyncClient,
    account: Account,
    file_id: str,
    part_numbers: list[int],
    **body: Any,
) -> httpx.Response:
    return await client.post(
        f"/upload/{file_id}/parts",
        json={"part_numbers": part_numbers, **body},
        headers=account.headers,
    )


async def put_part(web: httpx.AsyncClient, part: dict[str, Any], data: bytes) -> httpx.Response:
    """PUT one part to its presigned URL with exactly the headers Dropp gave for it."""
    return await web.put(part["url"], content=data, headers=part["headers"])


# --- servers on loopback ------------------------------------------------------------------


@contextmanager
def serve_in_thread(app: FastAPI, port: int, *, name: str) -> Iterator[str]:
    """uvicorn serving `app` on 127.0.0.1:`port`, in a thread with its own event loop;
    yields its URL. For clients that must speak real HTTP: a browser, a fuzzer sending bytes
    no Python client would, a test timing what goes over the socket. The port is the
    caller's, since settings such as PUBLIC_URL name it before the app exists."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"{name}: uvicorn did not start on port {port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def dropp_serve(
    port: int, *, cwd: Path, env: dict[str, str], timeout: float = 60
) -> Iterator[subprocess.Popen[str]]:
    """`dropp serve` in a process of its own, once it says it is ready; stopped after."""
    server = subprocess.Popen(
        [sys.executable, "-m", "dropp", "serve", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        deadline = time.monotonic() + timeout
        seen = []
        ready = f"Dropp ready at http://127.0.0.1:{port}"
        while (line := server.stderr.readline()) and ready not in line:
            seen.append(line)
            assert time.monotonic() < deadline, "".join(seen)
        assert line, f"dropp serve exited before it was ready:\n{''.join(seen)}"
        yield server
    finally:
        # A test may have stopped it already, to read the rest of its log.
        if server.poll() is None:
            server.terminate()
            server.communicate(timeout=60)


@contextmanager
def serve_dropp(settings: Settings, *, name: str, **changes: Any) -> Iterator[str]:
    """Dropp with these settings `changes` on a free loopback port, PUBLIC_URL naming it."""
    port = free_port()
    update = {"public_url": f"http://127.0.0.1:{port}", **changes}
    with serve_in_thread(create_app(settings.model_copy(update=update)), port, name=name) as url:
        yield url


@contextmanager
def smtp_server(handler: object) -> Iterator[int]:
    """An SMTP server on a free loopback port handing every message it accepts to `handler`
    (an aiosmtpd handler, such as tests.auth.conftest.Inbox); yields the port."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@contextmanager
def api_process(settings: Settings, **env: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Another API process on the same database and storage: `dropp serve`, as deployed, with
    these settings in its environment besides; its URL and the process (whose stderr is the
    rest of its log)."""
    port = free_port()
    values = {
        "DATABASE_URL": settings.database_url,
        "S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "S3_PUBLIC_ENDPOINT_URL": settings.s3_public_endpoint_url,
        "AWS_S3_BUCKET": settings.aws_s3_bucket,
        "AWS_ACCESS_KEY_ID": settings.aws_access_key_id,
        "AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key.get_secret_value()
        if settings.aws_secret_access_key
        else None,
        "SECRET_KEY": settings.secret_key.get_secret_value() if settings.secret_key else None,
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SWEEP_INTERVAL_SECONDS": "0",
        "RATE_LIMIT_PER_IP": "100000/minute",
        "RATE_LIMIT_PER_ACCOUNT": "100000/minute",
        **env,
    }
    with tempfile.TemporaryDirectory(prefix="dropp-second-") as home:
        environment = {
            **{
                k: v for k, v in os.environ.items() if not k.startswith(("DATABASE", "S3_", "AWS_"))
            },
            **{k: v for k, v in values.items() if v is not None},
            "DROPP_DATA_DIR": str(Path(home) / "data"),
        }
        with dropp_serve(port, cwd=Path(home), env=environment) as server:
            yield f"http://127.0.0.1:{port}", server
