"""`dropp sync` and `dropp status`."""

import contextlib
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from dropp.client.cli.app import (
    ClientContext,
    JsonOption,
    ServerOption,
    err,
    out,
    print_json,
    run,
)
from dropp.client.errors import ClientError
from dropp.client.progress import open_progress
from dropp.client.remote import clean_path
from dropp.client.sync.engine import RESCAN_SECONDS, Engine, Summary
from dropp.client.sync.executor import name_of
from dropp.client.sync.journal import Journal, journal_path
from dropp.client.sync.model import (
    Action,
    CreateLocalFolder,
    CreateRemoteFolder,
    DeleteLocal,
    DeleteRemote,
    Download,
    KeepLocalCopy,
    Kind,
    MoveLocal,
    MoveRemote,
    Plan,
    RecordBase,
    Skip,
    Upload,
)
from dropp.client.sync.scanner import Scan

# The server names a kept-both copy "name (conflicted copy <device> <date>).ext".
CONFLICT_MARK = "(conflicted copy"

RemoteOption = typer.Option(
    "--remote", help="The remote folder to keep in sync with (default: the whole account)."
)


def _print_summary(summary: Summary, as_json: bool) -> None:
    if as_json:
        # One object per run: with --watch, one line each (JSON lines).
        sys.stdout.write(json.dumps(asdict(summary), ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return
    for notice in summary.notices:
        err.print(f"dropp: {notice}", markup=False, highlight=False)
    for path, reason in summary.skipped:
        err.print(f"dropp: skipped {path}: {reason}", markup=False, highlight=False)
    for path in summary.conflicts:
        out.print(f"conflict: kept both versions, this one as {path}", markup=False)
    for path, why in summary.failures:
        err.print(f"dropp: failed {path}: {why}", markup=False, highlight=False)
    done = (
        f"{summary.uploaded} uploaded, {summary.downloaded} downloaded, {summary.moved} moved, "
        f"{summary.deleted} deleted, {summary.created} folders created, "
        f"{summary.hashed} files hashed, in {summary.passes} passes"
    )
    out.print(f"In sync: {done}.", markup=False, highlight=False)


def sync(
    local_dir: Annotated[Path, typer.Argument(help="The local folder to keep in sync.")],
    remote: Annotated[str, RemoteOption] = "/",
    once: Annotated[
        bool, typer.Option("--once", help="Sync until both sides agree, then exit (default).")
    ] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep syncing as either side changes.")
    ] = False,
    allow_mass_delete: Annotated[
        bool,
        typer.Option(
            "--allow-mass-delete",
            help="Let a pass delete more than half of the synced files on one side.",
        ),
    ] = False,
    watcher: Annotated[
        bool,
        typer.Option(
            "--watcher/--no-watcher",
            help="With --watch: listen for local file events (off: rescans only, for "
            "file systems that send none, such as network shares).",
        ),
    ] = True,
    rescan_interval: Annotated[
        float,
        typer.Option(help="With --watch: seconds between full local rescans.", min=1.0),
    ] = RESCAN_SECONDS,
    as_json: Annotated[bool, JsonOption] = False,
    server: Annotated[str | None, ServerOption] = None,
) -> None:
    """Two-way sync of a local folder with a remote folder."""
    if once and watch:
        raise typer.BadParameter("Choose --once or --watch, not both.")
    context = ClientContext(server)

    async def work() -> None:
        async with context.api() as api:
            me = await api.get("/me")
            with contextlib.ExitStack() as stack:
                progress = None if as_json else stack.enter_context(open_progress(out))
                engine = Engine(
                    api,
                    context.directory,
                    local_dir,
                    remote,
                    account_id=me["id"],
                    device=context.config.device_name,
                    allow_mass_delete=allow_mass_delete,
                    progress=progress,
                )
                stack.callback(engine.close)
                if not watch:
                    _print_summary(await engine.until_agreed(), as_json)
                    return
                async for summary in engine.watch(
                    local_events=watcher, rescan_seconds=rescan_interval
                ):
                    _print_summary(summary, as_json)

    run(work)


def describe(action: Action) -> str:
    """One line for a pending action, as `dropp status` lists it."""
    match action:
        case Upload():
            return f"upload {action.path}"
        case Download():
            return f"download {action.path}"
        case CreateRemoteFolder():
            return f"create folder {action.path} on the server"
        case CreateLocalFolder():
            return f"create folder {action.path} here"
        case MoveRemote():
            return f"move {action.source} to {action.target} on the server"
        case MoveLocal():
            return f"move {action.source} to {action.target} here"
        case DeleteRemote():
            return f"delete {action.path} on the server (to its trash)"
        case DeleteLocal():
            return f"delete {action.path} here (to the trash)"
        case KeepLocalCopy():
            return f"keep both versions of {action.path}: this one as {action.copy_path}"
        case RecordBase():
            return f"record {action.item.path if action.item else action.node_id} as in sync"
        case Skip():
            return f"skip {action.path}: {action.reason}"
    raise AssertionError(action)


def status(
    local_dir: Annotated[Path, typer.Argument(help="A folder `dropp sync` keeps in sync.")],
    remote: Annotated[str, RemoteOption] = "/",
    as_json: Annotated[bool, JsonOption] = False,
    server: Annotated[str | None, ServerOption] = None,
) -> None:
    """What is pending, in conflict or failing in a synced folder."""
    context = ClientContext(server)
    root = local_dir.expanduser().absolute()
    if not journal_path(context.directory, root, context.server, clean_path(remote)).exists():
        raise ClientError(f"{root} is not synced with {remote} on {context.server}.")

    async def work() -> dict[str, Any]:
        async with context.api() as api:
            me = await api.get("/me")
            engine = Engine(
                api,
                context.directory,
                root,
                remote,
                account_id=me["id"],
                device=context.config.device_name,
            )
            try:
                plan, local = await engine.preview()
                return _status(engine.journal, root, plan, local)
            finally:
                engine.close()

    answer = run(work)
    if as_json:
        print_json(answer)
        return
    lines = [f"{root} with {context.server}{clean_path(remote)}"]
    lines.append(f"{answer['synced_files']} files and {answer['synced_folders']} folders in sync")
    lines += [f"pending: {line}" for line in answer["pending"]]
    lines += [f"changing: {path}" for path in answer["changing"]]
    lines += [f"conflict: {path}" for path in answer["conflicts"]]
    lines += [f"failing: {item['path']}: {item['reason']}" for item in answer["failing"]]
    lines += [f"skipped: {item['path']}: {item['reason']}" for item in answer["skipped"]]
    if not (answer["pending"] or answer["changing"] or answer["failing"]):
        lines.append("Nothing pending: both sides agree.")
    out.print("\n".join(lines), markup=False, highlight=False)


def _pairs(text: str | None) -> list[dict[str, str]]:
    rows = [line.split("\t", 1) for line in (text or "").splitlines() if "\t" in line]
    return [{"path": path, "reason": reason} for path, reason in rows]


def _status(journal: Journal, root: Path, plan: Plan, local: Scan) -> dict[str, Any]:
    base = journal.base()
    return {
        "root": str(root),
        "synced_files": sum(1 for item in base.values() if item.kind is Kind.FILE),
        "synced_folders": sum(1 for item in base.values() if item.kind is Kind.FOLDER),
        "pending": [
            describe(action)
            for action in plan.actions
            if not isinstance(action, (Skip, RecordBase))
        ],
        "changing": list(local.changing),
        "conflicts": sorted(
            item.path for item in base.values() if CONFLICT_MARK in name_of(item.path)
        ),
        "failing": _pairs(journal.get_meta("last_failures")),
        "skipped": [{"path": skip.path, "reason": skip.reason} for skip in plan.skipped],
        "last_sync": journal.get_meta("last_sync"),
    }


def register(app: typer.Typer, panel: str) -> None:
    app.command(rich_help_panel=panel)(sync)
    app.command(rich_help_panel=panel)(status)
