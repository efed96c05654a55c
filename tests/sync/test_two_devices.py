"""Two desktop clients of one account, each keeping its tree from the feed alone."""

import httpx

from tests.helpers import Account, upload_file
from tests.sync.feed import ReplayClient, server_tree


async def assert_in_step(
    client: httpx.AsyncClient, account: Account, *devices: ReplayClient
) -> dict[str, tuple[str, str | None]]:
    for device in devices:
        await device.sync(client, account)
    tree = await server_tree(client, account)
    for device in devices:
        assert device.paths() == tree
    return tree


async def test_two_devices_converge_through_edits_conflicts_moves_and_deletes(
    client: httpx.AsyncClient, web: httpx.AsyncClient, alice: Account
) -> None:
    laptop, desktop = ReplayClient(), ReplayClient()
    await assert_in_step(client, alice, laptop, desktop)

    made = await client.post("/folders", json={"path": "/work"}, headers=alice.headers)
    assert made.status_code == 201, made.text
    folder_id = made.json()["folder_id"]
    plan = await upload_file(client, web, alice, "plan.txt", b"v1", folder="/work", device="laptop")
    tree = await assert_in_step(client, alice, laptop, desktop)
    assert tree["/work/plan.txt"] == ("file", plan["revision_id"])

    # Both edit the same revision: the laptop's upload lands first, the desktop's is kept
    # beside it as a conflicted copy.
    base = plan["revision_id"]
    mine = await upload_file(
        client,
        web,
        alice,
        "plan.txt",
        b"v2 laptop",
        folder="/work",
        device="laptop",
        base_revision=base,
    )
    theirs = await upload_file(
        client,
        web,
        alice,
        "plan.txt",
        b"v2 desktop",
        folder="/work",
        device="desktop",
        base_revision=base,
        conflict="keep_both",
    )
    assert theirs["conflict"] is not None
    tree = await assert_in_step(client, alice, laptop, desktop)
    assert tree["/work/plan.txt"] == ("file", mine["revision_id"])
    copies = [path for path in tree if path.startswith("/work/") and path != "/work/plan.txt"]
    assert len(copies) == 1
    assert "desktop" in copies[0]
    copy_id = theirs["file_id"]

    # The laptop renames the folder while the desktop moves the file out of it, by id.
    renamed = await client.patch(
        f"/folders/{folder_id}", json={"name": "projects"}, headers=alice.headers
    )
    assert renamed.status_code == 200, renamed.text
    moved = await client.patch(
        f"/files/{plan['file_id']}", json={"parent_path": "/"}, headers=alice.headers
    )
    assert moved.status_code == 200, moved.text
    tree = await assert_in_step(client, alice, laptop, desktop)
    assert tree["/plan.txt"] == ("file", mine["revision_id"])
    assert "/projects" in tree
    assert not any(path.startswith("/work") for path in tree)

    # The desktop deletes the conflicted copy, then the laptop the whole folder; one comes
    # back from the trash.
    assert (await client.delete(f"/files/{copy_id}", headers=alice.headers)).status_code == 204
    await desktop.sync(client, alice)
    assert (await client.delete(f"/folders/{folder_id}", headers=alice.headers)).status_code == 204
    tree = await assert_in_step(client, alice, laptop, desktop)
    assert set(tree) == {"/plan.txt"}
    restored = await client.post(f"/files/{copy_id}/restore", headers=alice.headers)
    assert restored.status_code == 200, restored.text
    tree = await assert_in_step(client, alice, laptop, desktop)
    # Its folder is in the trash, so the copy comes back at the top level.
    assert len(tree) == 2
    restored_folder = await client.post(f"/folders/{folder_id}/restore", headers=alice.headers)
    assert restored_folder.status_code == 200, restored_folder.text
    tree = await assert_in_step(client, alice, laptop, desktop)
    assert "/projects" in tree
