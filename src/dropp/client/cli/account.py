"""`dropp login`, `dropp logout`, `dropp whoami`."""

import sys
from typing import Annotated, Any

import typer

from dropp.client import auth
from dropp.client.api import Api
from dropp.client.cli.app import (
    ClientContext,
    JsonOption,
    ServerOption,
    human_size,
    out,
    print_json,
    run,
)
from dropp.client.config import normalize_server
from dropp.client.errors import ClientError


def login(
    server: Annotated[str | None, ServerOption] = None,
    email: Annotated[
        str | None, typer.Option(help="Sign in with this email and a password.")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Sign this device in to a Dropp server, and remember the server."""
    context = ClientContext(server)
    chosen = context.server

    async def work() -> None:
        async with context.api(chosen) as api:
            if email is None or not password_stdin:
                raise ClientError("Give --email and --password-stdin to sign in with a password.")
            password = sys.stdin.readline().rstrip("\r\n")
            await auth.sign_in_with_password(api, email, password)
            me = await api.get("/me")
        context.config.server = normalize_server(chosen)
        context.config.save(context.directory)
        out.print(f"Signed in to {chosen} as {me['email']}.", markup=False, highlight=False)

    run(work)


def logout(server: Annotated[str | None, ServerOption] = None) -> None:
    """Sign this device out: the server revokes its session."""
    context = ClientContext(server)

    async def work() -> None:
        async with context.api() as api:
            await auth.sign_out(api)
        out.print(f"Signed out of {context.server}.", markup=False, highlight=False)

    run(work)


async def _whoami(api: Api) -> dict[str, Any]:
    me = await api.get("/me")
    usage = await api.get("/me/usage")
    return {"server": api.server, "account": me, "usage": usage}


def whoami(
    server: Annotated[str | None, ServerOption] = None,
    as_json: Annotated[bool, JsonOption] = False,
) -> None:
    """The signed-in account, the server, and usage against the quota."""
    context = ClientContext(server)

    async def work() -> dict[str, Any]:
        async with context.api() as api:
            return await _whoami(api)

    answer = run(work)
    if as_json:
        print_json(answer)
        return
    usage = answer["usage"]
    quota = human_size(usage["quota"]) if usage["quota"] is not None else "no quota"
    lines = [
        f"{answer['account']['email']} on {answer['server']} ({answer['account']['role']})",
        f"{usage['files']} files, {human_size(usage['bytes'])} used of {quota}",
    ]
    out.print("\n".join(lines), markup=False, highlight=False)


def register(app: typer.Typer, panel: str) -> None:
    app.command(rich_help_panel=panel)(login)
    app.command(rich_help_panel=panel)(logout)
    app.command(rich_help_panel=panel)(whoami)
