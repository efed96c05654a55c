"""`dropp`: one command for the desktop client and the server, with grouped help.

Client commands (login, put, get, sync, ...) need only the client's packages; server commands
(serve, migrate, ...) import the server when they run, so a desktop install without the server
extra still has a working `dropp`.
"""

from collections.abc import Sequence
from typing import Annotated

import typer

from dropp.client import cli as client_cli

SERVER_PANEL = "Server commands"

app = typer.Typer(
    name="dropp",
    help="Dropp: file hosting, sync and sharing. Client commands talk to a Dropp server over "
    "HTTP; server commands run one.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
# Client commands first: they are what most people run.
client_cli.register(app)


def _version(value: bool) -> None:
    if value:
        # Here, not at the top: reading the installed metadata costs every command 30 ms.
        from importlib.metadata import version

        typer.echo(f"dropp {version('dropp')}")
        raise typer.Exit()


@app.callback()
def _root(
    _: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Dropp: file hosting, sync and sharing."""


@app.command(rich_help_panel=SERVER_PANEL)
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the API (on an embedded stack when DATABASE_URL is unset)."""
    from dropp import server_commands

    server_commands.run(lambda settings: server_commands.serve(settings, host, port))


@app.command(rich_help_panel=SERVER_PANEL)
def migrate(
    revision: Annotated[str, typer.Option(help="Alembic revision to reach.")] = "head",
) -> None:
    """Apply migrations to DATABASE_URL."""
    from dropp import server_commands
    from dropp.core import migrations
    from dropp.core.config import Settings

    def upgrade(settings: Settings) -> None:
        settings.require_database()
        migrations.upgrade(settings, revision)

    server_commands.run(upgrade)


@app.command("init-storage", rich_help_panel=SERVER_PANEL)
def init_storage() -> None:
    """Create AWS_S3_BUCKET with versioning and CORS (idempotent)."""
    from dropp import server_commands

    server_commands.run(server_commands.init_storage)


@app.command(rich_help_panel=SERVER_PANEL)
def sweep() -> None:
    """Clean up once: expired uploads and files, stale multipart uploads, unreferenced
    objects, old sign-in rows."""
    from dropp import server_commands

    server_commands.run(server_commands.sweep)


users = typer.Typer(help="Manage accounts on this server.", no_args_is_help=True)
app.add_typer(users, name="users", rich_help_panel=SERVER_PANEL)


@users.command("create-admin")
def create_admin(
    email: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create an admin account with a verified email, or make an existing account admin.

    Without --password-stdin, prompts for a password on a terminal; with no terminal, the
    account gets no password and signs in with Google only.
    """
    from dropp import server_commands

    server_commands.run(
        lambda settings: server_commands.create_admin(settings, email, password_stdin)
    )


def main(argv: Sequence[str] | None = None) -> None:
    app(args=list(argv) if argv is not None else None, prog_name="dropp")


if __name__ == "__main__":
    main()
