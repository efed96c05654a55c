"""Sharing on a throwaway embedded stack: what issuing a download URL costs through each way
in, and what a tree change costs when its folder is shared.

    python bench/sharing.py            # about 2 minutes
    python bench/sharing.py --help

1. Download URLs: GET at N concurrent keep-alive clients against `dropp serve`, for one file:
   the owner's `GET /download/{id}`; a share link's `GET /s/{token}/download` without a limit
   and with one (every request then takes its download with a guarded UPDATE of the link's
   one row); a viewer's `GET /download/{id}` through a share with them. Each issues a signed
   URL and records the download; all answer JSON (`redirect=false`).
2. Tree changes: `POST /folders` creating new folders inside a folder that is not shared,
   shared with one account, and shared with a role held by many accounts: the change is
   written once for the owner and once more for every recipient, in the same transaction.

Figures are printed, nothing is asserted: the issue sets no targets for these.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
from run import (
    LoadResult,
    Server,
    drive_load,
    embedded_bench_stack,
    login,
    machine_header,
    progress,
    stack_roots,
    start_dropp,
    table,
)
from sync import connect_options

from dropp.core.config import Settings

ROLE_MEMBERS = 100
PASSWORD = "bench password 1234"


def check(answer: httpx.Response, expected: int) -> dict[str, Any]:
    if answer.status_code != expected:
        raise RuntimeError(
            f"{answer.request.method} {answer.request.url} answered "
            f"{answer.status_code}: {answer.text}"
        )
    body: dict[str, Any] = answer.json()
    return body


def upload_small_file(api: httpx.Client, web: httpx.Client, folder: str) -> str:
    started = check(
        api.post("/upload/", json={"filename": "report.txt", "size": 5, "folder": folder}), 201
    )
    upload = started["upload"]
    posted = web.post(upload["url"], data=upload["fields"], files={"file": ("r", b"hello")})
    if posted.status_code not in {200, 201, 204}:
        raise RuntimeError(f"storage answered {posted.status_code}: {posted.text}")
    check(api.post(f"/upload/{started['file_id']}/complete"), 200)
    return str(started["file_id"])


async def add_verified_accounts(settings: Settings, emails: Sequence[str], role: str) -> None:
    """Accounts made straight in PostgreSQL: only their address and role matter here."""
    connection = await asyncpg.connect(**connect_options(settings))
    try:
        await connection.executemany(
            "INSERT INTO user_account (id, email, role, email_verified_at) "
            "VALUES ($1, $2, $3, now())",
            [(uuid.uuid4(), email, role) for email in emails],
        )
    finally:
        await connection.close()


def viewer_token(dropp: Server, settings: Settings) -> str:
    email = "viewer@example.com"
    with httpx.Client(base_url=dropp.base_url, timeout=30) as api:
        check(api.post("/auth/register", json={"email": email, "password": PASSWORD}), 201)
        asyncio.run(_verify(settings, email))
        tokens = check(api.post("/auth/login", json={"email": email, "password": PASSWORD}), 200)
    return str(tokens["access_token"])


async def _verify(settings: Settings, email: str) -> None:
    connection = await asyncpg.connect(**connect_options(settings))
    try:
        await connection.execute(
            "UPDATE user_account SET email_verified_at = now() WHERE email = $1", email
        )
    finally:
        await connection.close()


def result_row(label: str, result: LoadResult) -> list[str]:
    return [
        label,
        f"{result.rps:,.0f}",
        f"{result.p50_ms:.1f}",
        f"{result.p99_ms:.1f}",
        str(result.errors),
        f"{result.api_cpu * 1000 / result.rps:.2f}" if result.rps else "-",
        f"{result.stack_cpu:.2f}",
    ]


HEADERS = ["case", "req/s", "p50 ms", "p99 ms", "errors", "API cpu ms/req", "PG+S3 cores"]


def run(args: argparse.Namespace) -> None:
    print(machine_header(), flush=True)
    with contextlib.ExitStack() as stack:
        workdir, settings = embedded_bench_stack(stack, "dropp-bench-sharing-")
        dropp = start_dropp(stack, settings, workdir)
        owner = login(dropp)
        viewer = viewer_token(dropp, settings)
        progress(f"adding {ROLE_MEMBERS} verified accounts with the role `member`")
        asyncio.run(
            add_verified_accounts(
                settings, [f"member{n}@example.com" for n in range(ROLE_MEMBERS)], "member"
            )
        )
        auth = {"Authorization": f"Bearer {owner}"}
        api = stack.enter_context(httpx.Client(base_url=dropp.base_url, timeout=30, headers=auth))
        web = stack.enter_context(httpx.Client(timeout=30))

        for folder in ("/private", "/with-one", "/with-role"):
            check(api.post("/folders", json={"path": folder}), 201)
        file_id = upload_small_file(api, web, "/with-one")
        folder_ids = {
            item["name"]: item["id"]
            for item in check(api.get("/folders", params={"path": "/"}), 200)["items"]
        }
        check(
            api.post(
                "/shares/people",
                json={
                    "folder_id": folder_ids["with-one"],
                    "email": "viewer@example.com",
                    "permission": "viewer",
                },
            ),
            201,
        )
        check(
            api.post(
                "/shares/people",
                json={
                    "folder_id": folder_ids["with-role"],
                    "role": "member",
                    "permission": "viewer",
                },
            ),
            201,
        )
        open_link = check(api.post("/shares", json={"file_id": file_id}), 201)["token"]
        limited_link = check(
            api.post("/shares", json={"file_id": file_id, "max_downloads": 1_000_000}), 201
        )["token"]

        roots = stack_roots(workdir)
        owner_headers = [f"Authorization: Bearer {owner}"]
        downloads: list[tuple[str, str, list[str]]] = [
            ("owner: GET /download/{id}", f"/download/{file_id}?redirect=false", owner_headers),
            ("link: GET /s/{token}/download", f"/s/{open_link}/download?redirect=false", []),
            (
                "link with a download limit",
                f"/s/{limited_link}/download?redirect=false",
                [],
            ),
            (
                "viewer through a share: GET /download/{id}",
                f"/download/{file_id}?redirect=false",
                [f"Authorization: Bearer {viewer}"],
            ),
        ]
        rows = []
        for label, path, headers in downloads:
            progress(f"download URLs: {label}")
            result = drive_load(
                "dropp", dropp, path, None, headers, roots, args, workdir, method="GET", expect=200
            )
            rows.append(result_row(label, result))
        print()
        print(
            table(
                f"1. Download URLs issued, {args.concurrency} keep-alive clients, "
                f"{args.warmup:g} s warm-up + {args.duration:g} s measured, one uvicorn worker",
                HEADERS,
                rows,
            ),
            flush=True,
        )

        rows = []
        for label, folder in (
            ("in a folder not shared", "/private"),
            ("shared with one account", "/with-one"),
            (f"shared with a role: {ROLE_MEMBERS + 1} recipients", "/with-role"),
        ):
            progress(f"tree changes: {label}")
            body = json.dumps({"path": f"{folder}/f-{{n}}"})
            result = drive_load(
                "dropp", dropp, "/folders", body, owner_headers, roots, args, workdir
            )
            rows.append(result_row(f"POST /folders {label}", result))
        print()
        print(
            table(
                f"2. Tree changes with their feed rows, {args.concurrency} keep-alive clients, "
                "one account",
                HEADERS,
                rows,
            ),
            flush=True,
        )
        progress("stopping")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=32, help="keep-alive clients")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds, not measured")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
