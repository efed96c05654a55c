"""Every answer that describes a file or a folder names it `id`; `file_id` and `folder_id` stay,
marked deprecated, for clients that read them."""

from typing import Any

import httpx

from tests.helpers import Account, start_upload, upload_file


def _same_id(body: dict[str, Any], old_name: str) -> str:
    assert body["id"] == body[old_name], body
    identifier: str = body["id"]
    return identifier


async def test_file_and_upload_answers_carry_id(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    started = await start_upload(client, alice, "pending.txt", size=3)
    _same_id(started, "file_id")

    completed = await upload_file(client, web, alice, "kept.txt", b"kept", folder="/ids")
    file_id = _same_id(completed, "file_id")
    metadata = await client.get(f"/files/{file_id}", headers=alice.headers)
    assert _same_id(metadata.json(), "file_id") == file_id
    listed = await client.get("/list/", params={"folder": "/ids"}, headers=alice.headers)
    assert [_same_id(entry, "file_id") for entry in listed.json()["files"]] == [file_id]


async def test_folder_answers_carry_id(client: httpx.AsyncClient, alice: Account) -> None:
    created = await client.post("/folders", json={"path": "/with-id"}, headers=alice.headers)
    assert created.status_code == 201, created.text
    _same_id(created.json(), "folder_id")


async def test_openapi_documents_id_and_deprecates_the_old_names(
    client: httpx.AsyncClient,
) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    for name, old_name in [
        ("FileRead", "file_id"),
        ("UploadCompleteRead", "file_id"),
        ("UploadRead", "file_id"),
        ("FolderRead", "folder_id"),
    ]:
        properties = schemas[name]["properties"]
        assert "id" in schemas[name]["required"], name
        assert properties[old_name].get("deprecated") is True, name
