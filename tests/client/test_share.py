"""`dropp share` as people run it: the link it prints works for anyone, as configured, and
stops working when revoked."""

import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.client.shares import parse_duration
from tests.client.conftest import Device, DeviceFactory
from tests.client.server_side import upload
from tests.helpers import Account, register_account

LINK_PASSWORD = "open sesame 42"


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


def refused(device: Device, *args: str, code: int, input: str | None = None) -> str:
    done = device.run(*args, check=False, input=input)
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done.stderr


def token_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


async def test_a_file_link_with_expiry_password_and_a_download_limit(
    make_device: DeviceFactory, account: Account, dropp_url: str
) -> None:
    device = make_device("a", account)
    await upload(dropp_url, account, "/docs/report.pdf", b"the report")

    done = device.run(
        "share",
        "/docs/report.pdf",
        "--expires",
        "7d",
        "--password-stdin",
        "--max-downloads",
        "1",
        input=LINK_PASSWORD + "\n",
    )
    # The link alone, for `url=$(dropp share ...)`.
    (url,) = done.stdout.splitlines()
    assert url.startswith(f"{dropp_url}/s/")
    token = token_of(url)

    async with httpx.AsyncClient(base_url=dropp_url, timeout=30) as anyone:
        locked = await anyone.get(f"/s/{token}")
        assert locked.status_code == 401
        assert locked.json()["code"] == "share_locked"
        wrong = await anyone.post(f"/s/{token}/unlock", json={"password": "not it at all"})
        assert wrong.status_code == 401
        unlocked = await anyone.post(f"/s/{token}/unlock", json={"password": LINK_PASSWORD})
        assert unlocked.status_code == 200, unlocked.text
        access = {"X-Share-Access": unlocked.json()["access"]}

        shown = await anyone.get(f"/s/{token}", headers=access)
        assert shown.status_code == 200, shown.text
        assert (shown.json()["name"], shown.json()["downloads_left"]) == ("report.pdf", 1)
        expires_at = datetime.fromisoformat(shown.json()["expires_at"])
        assert abs(expires_at - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=5)

        signed = await anyone.get(
            f"/s/{token}/download", params={"redirect": "false"}, headers=access
        )
        assert signed.status_code == 200, signed.text
        fetched = await anyone.get(signed.json()["url"])
        assert fetched.content == b"the report"
        again = await anyone.get(
            f"/s/{token}/download", params={"redirect": "false"}, headers=access
        )
        assert again.status_code == 410

    (listed,) = as_json(device.run("share", "ls", "--json"))
    assert listed["path"] == "/docs/report.pdf"
    assert listed["password_protected"] is True
    assert (listed["max_downloads"], listed["downloads_used"]) == (1, 1)
    assert "token" not in listed
    line = device.run("share", "ls").stdout.splitlines()
    assert line == [f"{listed['id']}\tused up\t{listed['expires_at']}\t1/1\t/docs/report.pdf"]


async def test_a_folder_link_made_with_and_without_create(
    make_device: DeviceFactory, account: Account, dropp_url: str
) -> None:
    device = make_device("a", account)
    await upload(dropp_url, account, "/trip/day1.jpg", b"jpg")

    url = device.run("share", "trip").stdout.strip()
    created = as_json(device.run("share", "create", "/trip", "--json"))
    assert created["kind"] == "folder"
    assert created["url"] != url
    assert created["expires_at"] is None

    async with httpx.AsyncClient(timeout=30) as anyone:
        for link in (url, created["url"]):
            opened = await anyone.get(link)
            assert opened.status_code == 200, opened.text
            assert [item["name"] for item in opened.json()["items"]] == ["day1.jpg"]

    # The options may come before the path, as with any command.
    short = device.run("share", "--expires", "30m", "/trip/day1.jpg", "--json")
    expires_at = datetime.fromisoformat(as_json(short)["expires_at"])
    assert abs(expires_at - (datetime.now(UTC) + timedelta(minutes=30))) < timedelta(minutes=5)


async def test_share_rm_revokes_the_link(
    make_device: DeviceFactory, account: Account, dropp_url: str
) -> None:
    device = make_device("a", account)
    await upload(dropp_url, account, "/a.txt", b"a")
    first = as_json(device.run("share", "/a.txt", "--json"))
    second = as_json(device.run("share", "/a.txt", "--json"))
    assert [link["id"] for link in as_json(device.run("share", "ls", "--json"))] == [
        second["id"],
        first["id"],
    ]

    done = device.run("share", "rm", first["id"][:8])
    assert done.stdout == f"Revoked the link {first['id'][:8]} to /a.txt.\n"
    async with httpx.AsyncClient(timeout=30) as anyone:
        gone = await anyone.get(first["url"])
        assert gone.status_code in (404, 410)
        assert (await anyone.get(second["url"])).status_code == 200
    assert [link["id"] for link in as_json(device.run("share", "ls", "--json"))] == [second["id"]]
    refused(device, "share", "rm", first["id"], code=4)
    refused(device, "share", "rm", str(uuid.uuid4()), code=4)


async def test_what_share_refuses(
    make_device: DeviceFactory, account: Account, dropp_url: str, engine: AsyncEngine
) -> None:
    async with httpx.AsyncClient(base_url=dropp_url, timeout=30) as api:
        other = await register_account(
            api, f"other-{uuid.uuid4().hex[:8]}@example.com", engine=engine
        )
    await upload(dropp_url, other, "/theirs.txt", b"theirs")
    device = make_device("a", account)
    await upload(dropp_url, account, "/mine.txt", b"mine")

    refused(device, "share", "/theirs.txt", code=4)
    refused(device, "share", "/nothing-here.txt", code=4)
    refused(device, "share", "/", code=1)
    assert "duration" in refused(device, "share", "/mine.txt", "--expires", "7x", code=2)
    assert "1m to 365d" in refused(device, "share", "/mine.txt", "--expires", "60w", code=2)
    refused(device, "share", "/mine.txt", "--max-downloads", "0", code=2)
    # Too short for the server: its refusal, in one line.
    short = refused(device, "share", "/mine.txt", "--password-stdin", code=1, input="short\n")
    assert short.startswith("dropp: ")
    refused(device, "share", "/mine.txt", "--password-stdin", code=2, input="\n")
    assert as_json(device.run("share", "ls", "--json")) == []


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("12h", 43200), ("7d", 604800), ("2w", 1209600), ("90s", 90), ("1D", 86400)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "7", "d", "1.5h", "-1d", "30s", "53w"])
def test_durations_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|1m to 365d"):
        parse_duration(text)
