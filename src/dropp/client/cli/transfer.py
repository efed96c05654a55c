"""`dropp put` and `dropp get`: files and whole folders, verified, resumed after a crash.

The last argument is the destination when there are two or more, as with `cp`: `dropp put
a.txt photos /trip` uploads into /trip, `dropp get /trip/photos .` downloads into the
current folder. An interrupted upload keeps its state under `<config dir>/transfers/`, an
interrupted download its `.<name>.dropp-part`; running the same command again resumes both.
"""

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from dropp.client.api import Api
from dropp.client.cli.app import (
    ClientContext,
    JsonOption,
    ServerOption,
    err,
    interactive,
    out,
    print_json,
    run,
)
from dropp.client.errors import ApiError, ClientError, NotFound
from dropp.client.hashing import Content, FileChanged, FileHash, hash_file
from dropp.client.progress import open_progress
from dropp.client.remote import Node, children, clean_path, resolve
from dropp.client.transfers import (
    FileResumeStore,
    Progress,
    TransferError,
    Uploaded,
    UploadRequest,
    download,
    part_file,
    upload_many,
)

DOWNLOADS_AT_ONCE = 4


def _split(arguments: list[str], default: str) -> tuple[list[str], str]:
    """(sources, destination): the last argument is the destination when there are two."""
    if len(arguments) > 1:
        return arguments[:-1], arguments[-1]
    return arguments, default


def _warn(message: str) -> None:
    err.print(f"dropp: {message}", markup=False, highlight=False)


def _exit_code(errors: list[ClientError]) -> int:
    return errors[0].exit_code if errors else 0


# --- put ----------------------------------------------------------------------------------


@dataclass
class PutPlan:
    requests: list[UploadRequest] = field(default_factory=list)
    # Remote folders that no upload creates on its way: empty local folders.
    folders: list[str] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)


def plan_put(sources: list[Path], remote_dir: str, device: str | None) -> PutPlan:
    """What to upload where: a folder goes with its whole tree into `remote_dir`."""
    plan = PutPlan()
    every_folder: list[str] = []
    for source in sources:
        if not os.path.lexists(source):
            raise NotFound(f"No such file or folder: {source}.")
        if not source.is_dir():
            plan.requests.append(UploadRequest(source, remote_dir, source.name, device=device))
            continue
        top = clean_path(f"{remote_dir}/{source.resolve().name}")
        for directory, folder_names, file_names in os.walk(source):
            here = Path(directory)
            folder = clean_path(f"{top}/{here.relative_to(source).as_posix()}")
            every_folder.append(folder)
            folder_names.sort()
            for name in list(folder_names):
                if (here / name).is_symlink():
                    plan.skipped.append(here / name)
                    folder_names.remove(name)
            for name in sorted(file_names):
                path = here / name
                if path.is_symlink() or not path.is_file():
                    plan.skipped.append(path)
                    continue
                plan.requests.append(UploadRequest(path, folder, name, device=device))
    # Every folder above an upload is created by it (`folder` works like mkdir -p).
    reached = {"/"}
    for request in plan.requests:
        folder = clean_path(request.folder)
        while folder not in reached:
            reached.add(folder)
            folder = folder.rsplit("/", 1)[0] or "/"
    plan.folders = [folder for folder in every_folder if folder not in reached]
    return plan


def _put_entry(request: UploadRequest, result: Uploaded | ClientError) -> dict[str, Any]:
    if isinstance(result, ClientError):
        return {"local": str(request.source), "path": request.remote_path, "error": str(result)}
    return {
        "local": str(request.source),
        "path": result.path,
        "file_id": result.file_id,
        "size": result.size,
        "sent": result.sent,
        "content_hash": result.content_hash,
        "conflict": result.conflict,
    }


def put(
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="LOCAL",
            help="Files and folders to upload; with two or more arguments the last is the "
            "remote folder (default: the top level).",
        ),
    ],
    server: Annotated[str | None, ServerOption] = None,
    as_json: Annotated[bool, JsonOption] = False,
) -> None:
    """Upload files and folders (recursively); run it again to resume an interrupted upload."""
    context = ClientContext(server)
    sources, remote_dir = _split(paths, "/")

    async def work() -> tuple[PutPlan, list[Uploaded | ApiError | TransferError]]:
        device = context.config.device_name
        plan = plan_put([Path(source) for source in sources], clean_path(remote_dir), device)
        async with context.api() as api:
            for folder in plan.folders:
                await api.post("/folders", {"path": folder})
            store = FileResumeStore(context.directory / "transfers")
            with open_progress(out, bars=interactive() and not as_json) as progress:
                shown: Progress | None = None if as_json else progress
                results = await upload_many(api, plan.requests, progress=shown, resume=store)
        return plan, results

    plan, results = run(work)
    for path in plan.skipped:
        _warn(f"{path}: skipped (a symbolic link or not a regular file)")
    errors: list[ClientError] = []
    for request, result in zip(plan.requests, results, strict=True):
        if isinstance(result, ClientError):
            errors.append(result)
            _warn(f"{request.source}: {result}")
    if as_json:
        print_json(
            [_put_entry(r, result) for r, result in zip(plan.requests, results, strict=True)]
        )
    raise typer.Exit(_exit_code(errors))


# --- get ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetch:
    node: Node
    target: Path


async def _collect(api: Api, remote: str, local_dir: Path, jobs: list[Fetch]) -> list[Path]:
    """The files under a remote path, each with its local target; the folders to create."""
    path = clean_path(remote)
    if path == "/":
        return await _walk(api, "/", local_dir, jobs)
    node = await resolve(api, path)
    if node["kind"] == "file":
        jobs.append(Fetch(node, local_dir / node["name"]))
        return []
    return await _walk(api, node["path"], local_dir / node["name"], jobs)


async def _walk(api: Api, path: str, local: Path, jobs: list[Fetch]) -> list[Path]:
    folders = [local]
    async for child in children(api, path):
        if child["kind"] == "folder":
            folders += await _walk(api, child["path"], local / child["name"], jobs)
        elif child["revision_id"] is not None:
            # A file whose first upload is still pending has nothing to download yet.
            jobs.append(Fetch(child, local / child["name"]))
    return folders


async def _unchanged(api: Api, job: Fetch) -> FileHash | None:
    """The local file, when it already holds the remote bytes (a rerun skips it)."""
    target = job.target
    if not target.is_file() or target.stat().st_size != job.node["size"]:
        return None
    file = await api.get(f"/files/{job.node['id']}")
    remote = Content.remote(file["size"], file.get("content_hash"))
    if not remote.hashes:
        return None
    try:
        local = await asyncio.to_thread(hash_file, target)
    except (FileChanged, OSError):
        return None
    return local if local.content.same(remote) else None


@dataclass(frozen=True)
class Fetched:
    job: Fetch
    result: FileHash | ClientError
    resumed_from: int = 0
    unchanged: bool = False


async def _fetch_one(api: Api, job: Fetch, progress: Progress | None) -> Fetched:
    try:
        same = await _unchanged(api, job)
        if same is not None:
            return Fetched(job, same, unchanged=True)
        partial = part_file(job.target)
        resumed_from = partial.stat().st_size if partial.exists() else 0
        found = await download(api, job.node["id"], job.target, progress=progress)
    except (ApiError, TransferError, NotFound) as error:
        return Fetched(job, error)
    return Fetched(job, found, resumed_from=min(resumed_from, found.size))


def _get_entry(fetched: Fetched) -> dict[str, Any]:
    job, result = fetched.job, fetched.result
    entry: dict[str, Any] = {"path": job.node["path"], "local": str(job.target)}
    if isinstance(result, ClientError):
        return entry | {"error": str(result)}
    return entry | {
        "size": result.size,
        "sha256": result.sha256.hex(),
        "resumed_from": fetched.resumed_from,
        "unchanged": fetched.unchanged,
    }


def get(
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="REMOTE",
            help="Remote files and folders to download; with two or more arguments the last "
            "is the local folder (default: the current one).",
        ),
    ],
    server: Annotated[str | None, ServerOption] = None,
    as_json: Annotated[bool, JsonOption] = False,
) -> None:
    """Download files and folders (recursively), verified; run it again to resume."""
    context = ClientContext(server)
    remotes, local_dir = _split(paths, ".")

    async def work() -> list[Fetched]:
        async with context.api() as api:
            jobs: list[Fetch] = []
            for remote in remotes:
                for folder in await _collect(api, remote, Path(local_dir), jobs):
                    try:
                        folder.mkdir(parents=True, exist_ok=True)
                    except OSError as error:
                        raise ClientError(f"{folder}: {error.strerror or error}") from error
            total = sum(job.node["size"] or 0 for job in jobs)
            bars = interactive() and not as_json
            with open_progress(out, bars=bars, total=total) as progress:
                shown: Progress | None = None if as_json else progress
                running = asyncio.Semaphore(DOWNLOADS_AT_ONCE)

                async def one(job: Fetch) -> Fetched:
                    async with running:
                        fetched = await _fetch_one(api, job, shown)
                    if fetched.unchanged and shown is not None:
                        task = shown.add(str(job.target), job.node["size"] or 0)
                        shown.advance(task, job.node["size"] or 0)
                        shown.done(task)
                    return fetched

                return list(await asyncio.gather(*(one(job) for job in jobs)))

    fetched = run(work)
    errors: list[ClientError] = []
    for item in fetched:
        if isinstance(item.result, ClientError):
            errors.append(item.result)
            _warn(f"{item.job.node['path']}: {item.result}")
    if as_json:
        print_json([_get_entry(item) for item in fetched])
    raise typer.Exit(_exit_code(errors))


def register(app: typer.Typer, panel: str) -> None:
    app.command(rich_help_panel=panel)(put)
    app.command(rich_help_panel=panel)(get)
