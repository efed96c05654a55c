"""`dropp login`, `dropp logout`, `dropp whoami`."""

import sys
import webbrowser
from typing import Annotated, Any

import typer

from dropp.client import auth
from dropp.client.api import Api
from dropp.client.cli.app import (
    ClientContext,
    JsonOption,
    ServerOption,
    err,
    human_size,
    out,
    print_json,
    run,
)
from dropp.client.config import normalize_server

# Half of what a sign-in lasts on the server by default (SIGN_IN_TTL_SECONDS, 10 minutes).
BROWSER_TIMEOUT_SECONDS = 300.0


def login(
    server: Annotated[str | None, ServerOption] = None,
    device: Annotated[
        bool,
        typer.Option(
            "--device", help="Show a code to approve in any browser (for machines without one)."
        ),
    ] = False,
    email: Annotated[
        str | None, typer.Option(help="Sign in with this email and a password.")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for the browser to come back.")
    ] = BROWSER_TIMEOUT_SECONDS,
) -> None:
    """Sign this device in to a Dropp server, and remember the server.

    By default in your browser; `--device` shows a code to approve in any browser;
    `--email E --password-stdin` is for scripts.
    """
    if (email is None) != (not password_stdin):
        raise typer.BadParameter("Give --email and --password-stdin together.")
    if device and email is not None:
        raise typer.BadParameter("Choose --device or --email, not both.")
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    context = ClientContext(server)

    async def work() -> tuple[str, dict[str, Any]]:
        chosen = context.server
        async with context.api(chosen) as api:
            if email is not None and password is not None:
                await auth.sign_in_with_password(api, email, password)
            elif device:
                await auth.sign_in_with_device(api, announce=_show_code)
            else:
                try:
                    await auth.sign_in_with_browser(
                        api, open_browser=webbrowser.open, announce=_show_url, wait_seconds=timeout
                    )
                except auth.BrowserSignInUnavailable as unavailable:
                    _notice(f"{unavailable} Signing in with a code instead.")
                    await auth.sign_in_with_device(api, announce=_show_code)
            me = await api.get("/me")
        context.config.server = normalize_server(chosen)
        context.config.save(context.directory)
        return chosen, me

    chosen, me = run(work)
    out.print(f"Signed in to {chosen} as {me['email']}.", markup=False, highlight=False)


def _notice(message: str) -> None:
    err.print(message, markup=False, highlight=False)


def _show_url(url: str) -> None:
    # Always shown, so a person whose browser did not open can copy it.
    _notice(f"Open this URL to sign in: {url}")


def _show_code(device: auth.DeviceCode) -> None:
    _notice(f"Open {device.verification_uri} in a browser and enter the code {device.user_code}")
    if device.verification_uri_complete:
        _notice(f"(or open {device.verification_uri_complete})")
    _notice("Waiting for approval...")


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
