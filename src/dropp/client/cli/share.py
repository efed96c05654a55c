"""`dropp share PATH`, `dropp share ls`, `dropp share rm ID`.

`share` is a group whose default command is `create`: `dropp share PATH` is short for
`dropp share create PATH`, so a file named `ls` or `rm` at the top level is shared with
`dropp share create ls` (or `dropp share /ls`).
"""

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from dropp.client import shares
from dropp.client.cli.app import (
    ClientContext,
    JsonOption,
    ServerOption,
    err,
    interactive,
    print_json,
    run,
)
from dropp.client.cli.files import local_time, say, show

DEFAULT_COMMAND = "create"


class DefaultToCreate(TyperGroup):
    """A group that runs `create` when its first argument names none of its commands."""

    # `ctx` is the Context of the click that typer bundles, which it does not export.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


share_app = typer.Typer(
    cls=DefaultToCreate,
    no_args_is_help=True,
    help="Share links: `dropp share PATH` makes one and prints it.",
)


def _expiry(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return shares.parse_duration(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


@share_app.command()
def create(
    path: Annotated[str, typer.Argument(help="The file or folder on the server to share.")],
    expires: Annotated[
        str | None,
        typer.Option(help="How long the link works: 30m, 12h, 7d, 2w (default: until revoked)."),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read a password (8 characters or more) the link asks for from standard input.",
        ),
    ] = False,
    max_downloads: Annotated[
        int | None, typer.Option(min=1, help="Downloads the link allows in all.")
    ] = None,
    as_json: Annotated[bool, JsonOption] = False,
    server: Annotated[str | None, ServerOption] = None,
) -> None:
    """Make a link anyone holding it can open (without an account); print it."""
    expires_in = _expiry(expires)
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    if password_stdin and not password:
        raise typer.BadParameter("No password on standard input.", param_hint="--password-stdin")
    context = ClientContext(server)

    async def work() -> dict[str, Any]:
        async with context.api() as api:
            return await shares.create_link(
                api,
                path,
                expires_in=expires_in,
                password=password,
                max_downloads=max_downloads,
            )

    link = run(work)
    if as_json:
        print_json(link)
        return
    # The link alone on stdout, for `url=$(dropp share ...)`; the rest is for a person.
    say(link["url"])
    if interactive():
        err.print(_describe(link), markup=False, highlight=False)


def _describe(link: dict[str, Any] | shares.ShareLink) -> str:
    parts = [link["path"]]
    parts.append(f"until {local_time(link['expires_at'])}" if link["expires_at"] else "no expiry")
    if link["password_protected"]:
        parts.append("password")
    if link["max_downloads"] is not None:
        parts.append(f"{link['downloads_used']} of {link['max_downloads']} downloads used")
    return ", ".join(parts)


def _state(link: shares.ShareLink) -> str:
    if link["expired"]:
        return "expired"
    if link["in_trash"]:
        return "in trash"
    if link["max_downloads"] is not None and link["downloads_used"] >= link["max_downloads"]:
        return "used up"
    return "active"


@share_app.command("ls")
def list_links(
    as_json: Annotated[bool, JsonOption] = False,
    server: Annotated[str | None, ServerOption] = None,
) -> None:
    """Your share links that are not revoked, newest first."""
    context = ClientContext(server)

    async def work() -> list[shares.ShareLink]:
        async with context.api() as api:
            return await shares.links(api)

    found = run(work)
    if as_json:
        print_json(found)
        return

    def downloads(link: shares.ShareLink) -> str:
        limit = "" if link["max_downloads"] is None else f"/{link['max_downloads']}"
        return f"{link['downloads_used']}{limit}"

    show(
        ("Id", "Path", "State", "Expires", "Downloads", "Password"),
        [
            (
                link["id"][:8],
                link["path"],
                _state(link),
                local_time(link["expires_at"]) or "never",
                downloads(link),
                "yes" if link["password_protected"] else "",
            )
            for link in found
        ],
        [
            (link["id"], _state(link), link["expires_at"] or "", downloads(link), link["path"])
            for link in found
        ],
    )


@share_app.command("rm")
def remove(
    link_id: Annotated[
        str, typer.Argument(metavar="ID", help="The link's id, or enough of its first characters.")
    ],
    server: Annotated[str | None, ServerOption] = None,
) -> None:
    """Revoke a share link: it stops working at once."""
    context = ClientContext(server)

    async def work() -> shares.ShareLink:
        async with context.api() as api:
            return await shares.revoke(api, link_id)

    link = run(work)
    say(f"Revoked the link {link['id'][:8]} to {link['path']}.")


def register(app: typer.Typer, panel: str) -> None:
    app.add_typer(share_app, name="share", rich_help_panel=panel)
