import httpx

from tests.helpers import Account, download_bytes, upload_file


async def test_upload_complete_list_download(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    data = b"quarterly numbers\n" * 100
    done = await upload_file(client, web, alice, "report.txt", data, folder="/reports/2026")

    assert done["status"] == "complete"
    assert done["size"] == len(data)
    assert done["path"] == "/reports/2026/report.txt"
    listed = await client.get("/list/", headers=alice.headers)
    assert [f["file_id"] for f in listed.json()["files"]] == [done["file_id"]]
    downloaded = await download_bytes(client, web, alice, done["file_id"])
    assert downloaded.content == data
