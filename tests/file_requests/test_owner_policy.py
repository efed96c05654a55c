"""A file request takes only what its owner's role may upload directly."""

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.roles.policy import UploadPolicy
from tests.conftest import api_client
from tests.file_requests.flow import drop, open_request, start_drop
from tests.helpers import assert_problem, register_account

OFFICE = UploadPolicy(
    extensions=("docx", "xlsx", "pptx"),
    content_types=(
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
)


async def test_a_link_refuses_files_its_owners_role_may_not_upload(
    client: httpx.AsyncClient, web: httpx.AsyncClient, app_with: Any, engine: AsyncEngine
) -> None:
    async with app_with(roles={"ops": OFFICE}) as app, api_client(app) as api:
        ops = await register_account(api, "ops@example.com", engine=engine, role="ops")
        token = (await open_request(api, ops))["token"]

        program = await start_drop(api, token, "setup.exe", 10)
        page = await start_drop(api, token, "invite.html", 10)
        disguised = await start_drop(api, token, "report.docx", 10, content_type="text/html")
        await drop(api, web, token, "report.docx", b"PK\x03\x04 office")

    for refused in (program, page, disguised):
        assert_problem(refused, 415, "file_type_not_allowed")


async def test_a_link_takes_no_file_over_its_owners_role_limit(
    client: httpx.AsyncClient, app_with: Any, engine: AsyncEngine
) -> None:
    async with (
        app_with(roles={"small": UploadPolicy(max_file_bytes=100)}) as app,
        api_client(app) as api,
    ):
        small = await register_account(api, "small@example.com", engine=engine, role="small")
        token = (await open_request(api, small))["token"]

        over = await start_drop(api, token, "big.bin", 101)

    assert assert_problem(over, 413, "file_too_large")["max_bytes"] == 100
