"""One 64 MiB file from `dropp send` to `dropp receive`, peer to peer and through the cloud,
on a throwaway embedded stack.

    python bench/p2p.py                 # about two minutes
    python bench/p2p.py --help

Two real processes on this machine, as people run them: a signed-in sender and an anonymous
receiver, both offering loopback as their host address (DROPP_P2P_HOST_ADDRESSES=127.0.0.1).
Each run times the receiver, from its start to the file checked and in place: joining,
connecting, the bytes and the SHA-256. Peer to peer is a WebRTC data channel (aiortc, in
Python on both ends); the cloud path is `--via cloud`, the same file uploaded to storage with
a presigned form and downloaded once. The runs alternate, so the machine's drift falls on
both; the cloud path is the baseline in the same run. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from run import (
    EMAIL,
    PASSWORD,
    embedded_bench_stack,
    login,
    machine_header,
    progress,
    start_dropp,
    table,
    write_random_file,
)

MIB = 1024**2


def _device(home: Path, server: str) -> dict[str, str]:
    return {
        **os.environ,
        "DROPP_CONFIG_DIR": str(home),
        "DROPP_SERVER": server,
        "DROPP_CREDENTIALS": "file",
        "DROPP_P2P_HOST_ADDRESSES": "127.0.0.1",
    }


def _dropp(*args: str) -> list[str]:
    return [sys.executable, "-m", "dropp", *args]


def one_run(sender: dict[str, str], receiver: dict[str, str], source: Path, via: str) -> float:
    """Seconds from the receiver's start to the file in place."""
    with tempfile.TemporaryDirectory(prefix="dropp-bench-received-") as target:
        sending = subprocess.Popen(
            _dropp("send", str(source), "--json", "--via", via),
            env=sender,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert sending.stdout is not None
            code = json.loads(sending.stdout.readline())["code"]
            started = time.perf_counter()
            received = subprocess.run(
                _dropp("receive", code, target, "--json"),
                env=receiver,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            seconds = time.perf_counter() - started
            sending.communicate(timeout=60)
        finally:
            sending.kill()
        if received.returncode != 0:
            raise RuntimeError(f"dropp receive failed:\n{received.stderr}")
        outcome = json.loads(received.stdout.splitlines()[-1])
        if outcome["via"] != via:
            raise RuntimeError(f"asked for {via}, went {outcome['via']}")
        if Path(outcome["path"]).stat().st_size != source.stat().st_size:
            raise RuntimeError("the received file has another size")
    return seconds


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=64, help="the file's size")
    parser.add_argument("--runs", type=int, default=3, help="runs each way")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    print(machine_header(), flush=True)
    with contextlib.ExitStack() as stack:
        workdir, settings = embedded_bench_stack(stack, "dropp-bench-p2p-")
        dropp = start_dropp(stack, settings, workdir)
        login(dropp)
        sender = _device(workdir / "sender", dropp.base_url)
        receiver = _device(workdir / "receiver", dropp.base_url)
        subprocess.run(
            _dropp("login", "--email", EMAIL, "--password-stdin"),
            input=PASSWORD + "\n",
            env=sender,
            check=True,
            capture_output=True,
            text=True,
        )
        source = workdir / "file.bin"
        write_random_file(source, args.size_mib * MIB)
        timings: dict[str, list[float]] = {"p2p": [], "cloud": []}
        for run in range(args.runs):
            for via in ("p2p", "cloud"):
                progress(f"run {run + 1} of {args.runs}: {via}")
                timings[via].append(one_run(sender, receiver, source, via))
    cloud = statistics.median(timings["cloud"])
    rows = []
    names = {"cloud": "through storage, --via cloud (baseline)", "p2p": "peer to peer"}
    for via, name in names.items():
        median = statistics.median(timings[via])
        rows.append(
            [
                name,
                f"{median:.2f}",
                f"{args.size_mib / median:.1f}",
                f"{cloud / median:.2f}x",
            ]
        )
    print(
        table(
            f"dropp send to dropp receive, {args.size_mib} MiB on loopback, median of "
            f"{args.runs} runs",
            ["", "s", "MiB/s", "speed vs baseline"],
            rows,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
