"""The client commands of `dropp`, registered on one Typer app."""

import typer

from dropp.client.cli.app import CLIENT_PANEL


def register(app: typer.Typer) -> None:
    """Add every client command to `app`, under the client panel of `dropp --help`."""
    # Imported here so that `dropp serve` loads none of the client's modules it does not use.
    from dropp.client.cli import account, files, p2p, share, sync, transfer

    for module in (account, files, transfer, p2p, share, sync):
        module.register(app, CLIENT_PANEL)
