"""`dropp ls`, `mkdir`, `mv`, `rm`, `trash`, `restore`, `revisions`, `revert`.

Remote paths start at the top level of the account: `docs/a.txt` and `/docs/a.txt` are one
path. On a terminal listings are tables; piped, one line per item with tab-separated fields
(sizes in bytes, times as the server gives them, the name or path last).
"""

import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from dropp.client import files
from dropp.client.cli.app import (
    ClientContext,
    JsonOption,
    ServerOption,
    human_size,
    interactive,
    out,
    print_json,
    run,
)
from dropp.client.remote import Node

RemotePath = typer.Argument(help="A path on the server, such as /docs/report.pdf.")


def say(message: str) -> None:
    out.print(message, markup=False, highlight=False)


def local_time(text: str | None) -> str:
    """A server timestamp in this machine's time zone, to the minute."""
    if not text:
        return ""
    return datetime.fromisoformat(text).astimezone().strftime("%Y-%m-%d %H:%M")


def show(
    columns: Sequence[str], rows: Sequence[Sequence[str]], plain: Sequence[Sequence[str]]
) -> None:
    """A table on a terminal; tab-separated lines (`plain`, for scripts) otherwise."""
    if not interactive():
        # Written as they are: rich would expand the tabs into spaces.
        sys.stdout.writelines("\t".join(row) + "\n" for row in plain)
        return
    table = Table(*columns, box=None, header_style="bold", pad_edge=False)
    for row in rows:
        table.add_row(*row)
    out.print(table, highlight=False)


def ls(
    path: Annotated[
        str, typer.Argument(help="A folder (the top level by default) or a file.")
    ] = "/",
    as_json: Annotated[bool, JsonOption] = False,
    server: Annotated[str | None, ServerOption] = None,
) -> None:
    """List a folder on the server: folders first, then files."""
    context = ClientContext(server)

    async def work() -> list[Any]:
        async with context.api() as api:
            return list(await files.listing(api, path))

    nodes = run(work)
    if as_json:
        print_json(nodes)
        return

    def size(node: Any) -> str:
        if node["kind"] == "folder":
            return ""
        return "uploading" if node["status"] == "pending" else human_size(node["size"])

    show(
        ("Kind", "Name", "Size", "Modified"),
        [
            (
                node["kind"],
                node["name"] + ("/" if node["kind"] == "folder" else ""),
                size(node),
                local_time(node["updated_at"]),
            )
            for node in nodes
        ],
        [
            (
                node["kind"],
                "" if node["size"] is None else str(node["size"]),
                node["updated_at"],
                node["name"],
            )
            for node in nodes
        ],
    )


def mkdir(
    path: Annotated[str, typer.Argument(help="The folder to create, with its parents.")],
    server: Annotated[str | None, ServerOption] = None,
) -> None:
    """Create a folder on the server, and any missing parents; an existing one is fine."""
    context = ClientContext(server)

    async def work() -> files.Made:
        async with context.api() as api:
            return await files.make_folder(api, path)

    made = run(work)
    say(f"Created {made.path}." if made.created else f"{made.path} exists already.")


def mv(
    source: Annotated[str, typer.Argument(help="The file or folder to move or rename.")],
    target: Annotated[
        str, typer.Argument(help="Its new path; an existing folder means into that folder.")
    ],
    server: Annotated[str | None, ServerOption] = None,
) -> None:
    """Rename or move a file or folder on the server (its history moves with it)."""
    context = ClientContext(server)

    async def work() -> tuple[str, str]:
        async with context.api() as api:
            before, after = await files.move(api, source, target)
            return before["path"], after["path"]

    before, after = run(work)
    say(f"Moved {before} to {after}.")


def rm(
    path: Annotated[str, RemotePath],
    server: Annotated[str | None, ServerOption] = None,
) -> None:
    """Move a file or folder to the server's trash (`dropp restore` brings it back)."""
    context = ClientContext(server)

    async def work() -> Node:
        async with context.api() as api:
            return await files.trash(api, path)

    node = run(work)
    say(f"Moved {node['path']} to the trash; `dropp restore {node['path']}` brings it back.")


def trash(
    as_json: Annotated[bool, JsonOption] = False,
    server: Annotated[str | None, ServerOption] = None,
) -> None:
    """What is in the server's trash, newest first, and when each item goes for good."""
    context = ClientContext(server)

    async def work() -> list[files.TrashItem]:
        async with context.api() as api:
            return await files.trash_items(api)

    items = run(work)
    if as_json:
        print_json(items)
        return
    show(
        ("Kind", "Was at", "Deleted", "Purged"),
        [
            (
                item["kind"],
                item["original_path"],
                local_time(item["trashed_at"]),
                local_time(item["purge_at"]),
            )
            for item in items
        ],
        [
            (item["kind"], item["trashed_at"], item["purge_at"], item["original_path"])
            for item in items
        ],
    )


def restore(
    path: Annotated[str, typer.Argument(help="Where the item was before it was deleted.")],
    server: Annotated[str | None, ServerOption] = None,
) -> None:
    """Bring a file or folder back from the trash, with what was deleted with it."""
    context = ClientContext(server)

    async def work() -> Node:
        async with context.api() as api:
            return await files.restore(api, path)

    node = run(work)
    say(f"Restored {node['path']}.")


def revisions(
    path: Annotated[str, typer.Argument(help="A file on the server.")],
    as_json: Annotated[bool, JsonOption] = False,
    server: Annotated[str | None, ServerOption] = None,
) -> None:
    """A file's revisions, newest first; `*` marks the one it serves."""
    context = ClientContext(server)

    async def work() -> list[files.Revision]:
        async with context.api() as api:
            return await files.revisions(api, path)

    found = run(work)
    if as_json:
        print_json(found)
        return
    show(
        ("", "Revision", "Size", "Saved", "By"),
        [
            (
                "*" if item["current"] else "",
                item["revision_id"][:8],
                human_size(item["size"]),
                local_time(item["completed_at"]),
                item["uploaded_by_email"] or item["device"] or "",
            )
            for item in found
        ],
        [
            (
                "current" if item["current"] else "old",
                item["revision_id"],
                str(item["size"]),
                item["completed_at"],
                item["device"] or "",
            )
            for item in found
        ],
    )


def revert(
    path: Annotated[str, typer.Argument(help="A file on the server.")],
    revision: Annotated[
        str, typer.Argument(help="The revision's id, or enough of its first characters.")
    ],
    server: Annotated[str | None, ServerOption] = None,
) -> None:
    """Make an old revision of a file its newest one (the others stay in its history)."""
    context = ClientContext(server)

    async def work() -> files.Reverted:
        async with context.api() as api:
            return await files.revert(api, path, revision, device=context.config.device_name)

    reverted = run(work)
    short = reverted.revision["revision_id"][:8]
    if reverted.changed:
        say(f"{reverted.file['path']} now serves the bytes of revision {short}.")
    else:
        say(f"{reverted.file['path']} already serves the bytes of revision {short}.")


def register(app: typer.Typer, panel: str) -> None:
    for command in (ls, mkdir, mv, rm, trash, restore, revisions, revert):
        app.command(rich_help_panel=panel)(command)
