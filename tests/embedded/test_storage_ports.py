"""Every port and socket the embedded SeaweedFS opens refuses a local process without Dropp's
keys: only the S3 port answers, and it checks SigV4 signatures."""

import os
import pwd
import socket
import ssl
import stat
import struct
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import httpx
import jwt
import psutil
import pytest
from botocore.config import Config

from dropp.core.config import Settings
from dropp.embedded import seaweedfs
from dropp.embedded.storage_security import tls_files

SECRET = b"only Dropp may read or change these bytes"
TAMPERED = b"tampered by a local process"
# What Go's TLS server answers to plain HTTP sent to it: a refusal, with no data.
PLAIN_TO_TLS = "Client sent an HTTP request to an HTTPS server"


def _weed_processes(data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if cmdline and Path(cmdline[0]).name == "weed" and str(data_dir) in " ".join(cmdline):
            found.append(process)
    return found


@pytest.fixture(scope="module")
def weed(settings: Settings) -> psutil.Process:
    (process,) = _weed_processes(settings.data_dir)
    return process


def _tcp_ports(process: psutil.Process) -> set[int]:
    return {
        c.laddr.port for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN
    }


def _unix_sockets(process: psutil.Process) -> set[str]:
    # Listening Unix sockets have a path; the ends of connected pairs have none.
    return {c.laddr for c in process.net_connections(kind="unix") if c.laddr}


@pytest.fixture(scope="module")
def stored(settings: Settings) -> Iterator[tuple[str, str]]:
    """An object written through S3 with Dropp's keys: (key, version id)."""
    s3 = _s3(settings)
    key = "users/victim/secret.bin"
    version = s3.put_object(Bucket=settings.aws_s3_bucket, Key=key, Body=SECRET)["VersionId"]
    yield key, version
    s3.delete_object(Bucket=settings.aws_s3_bucket, Key=key, VersionId=version)


def _s3(settings: Settings) -> object:
    assert settings.aws_secret_access_key is not None
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key.get_secret_value(),
        region_name=settings.aws_region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def _s3_port(settings: Settings) -> int:
    assert settings.s3_endpoint_url is not None
    port = urlsplit(settings.s3_endpoint_url).port
    assert port is not None
    return port


def _dropp_client(settings: Settings) -> httpx.Client:
    """How Dropp itself, holding the storage's client certificate, reaches the filer."""
    tls = tls_files(settings.data_dir / "s3")
    return httpx.Client(verify=seaweedfs.tls_context(tls), timeout=10)


def _fid(settings: Settings, filer_port: int, path: str) -> str:
    """The volume file id of a stored version, the worst case: the attacker learnt it.
    Learning it takes what Dropp holds: the client certificate and the filer's read key."""
    storage_dir = settings.data_dir / "s3"
    config = tomllib.loads((storage_dir / "security.toml").read_text())
    read_key = config["jwt"]["filer_signing"]["read"]["key"]
    token = jwt.encode({"exp": int(time.time()) + 10}, read_key, algorithm="HS256")
    with _dropp_client(settings) as dropp:
        meta = dropp.get(
            f"https://127.0.0.1:{filer_port}{path}",
            params={"metadata": "true"},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
    fid: str = meta["chunks"][0]["file_id"]
    return fid


def _plain(method: str, url: str, **kwargs: object) -> httpx.Response | None:
    try:
        return httpx.request(method, url, timeout=5, **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError:
        return None


def _refused(method: str, port: int, path: str, **kwargs: object) -> bool:
    """Plain HTTP and HTTPS without a client certificate both get no answer but a refusal."""
    plain = _plain(method, f"http://127.0.0.1:{port}{path}", **kwargs)
    plain_refused = plain is None or (plain.status_code == 400 and PLAIN_TO_TLS in plain.text)
    try:
        with httpx.Client(verify=False, timeout=5) as anonymous:
            anonymous.request(method, f"https://127.0.0.1:{port}{path}", **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError:
        return plain_refused
    return False


def _hpack_literal(name: str, value: str) -> bytes:
    # "Literal header field without indexing, new name", no Huffman coding (RFC 7541 6.2.2).
    encoded = b""
    for text in (name, value):
        raw = text.encode()
        assert len(raw) < 127
        encoded += bytes([len(raw)]) + raw
    return b"\x00" + encoded


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack(">I", stream)
        + payload
    )


def _grpc_answers(sock: socket.socket | ssl.SSLSocket, path: str, message: bytes) -> bool:
    """Send one raw gRPC call over HTTP/2; True when the server answered it with headers
    (any grpc-status, UNIMPLEMENTED included: the call was accepted without credentials)."""
    headers = b"".join(
        _hpack_literal(name, value)
        for name, value in (
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "127.0.0.1"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        )
    )
    call = b"\x00" + struct.pack(">I", len(message)) + message
    try:
        sock.sendall(
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
            + _frame(4, 0, 0, b"")
            + _frame(1, 0x4, 1, headers)
            + _frame(0, 0x1, 1, call)
        )
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return False
            received += chunk
            while len(received) >= 9:
                length = int.from_bytes(received[:3], "big")
                if len(received) < 9 + length:
                    break
                kind, stream = received[3], int.from_bytes(received[5:9], "big") & 0x7FFFFFFF
                if kind == 1 and stream == 1:
                    return True
                if kind == 7:  # GOAWAY
                    return False
                received = received[9 + length :]
    except OSError:
        return False


def _list_entries(directory: str) -> tuple[str, bytes]:
    raw = directory.encode()
    return "/filer_pb.SeaweedFiler/ListEntries", b"\x0a" + bytes([len(raw)]) + raw


def _grpc_refused(port: int, directory: str) -> bool:
    path, message = _list_entries(directory)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        if _grpc_answers(sock, path, message):
            return False
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw) as tls,
        ):
            return not _grpc_answers(tls, path, message)
    except OSError:
        return True


def test_only_the_s3_port_answers_a_local_process_without_keys(
    settings: Settings, weed: psutil.Process, stored: tuple[str, str]
) -> None:
    key, _ = stored
    bucket = settings.aws_s3_bucket
    ports = _tcp_ports(weed) - {_s3_port(settings)}
    assert ports, "weed should listen on more than its S3 port"
    paths = [
        "/",
        "/dir/status",
        "/dir/assign",
        "/status",
        "/cluster/status",
        f"/buckets/{bucket}/?pretty=y",
        f"/buckets/{bucket}/{key}.versions/",
    ]
    for port in sorted(ports):
        for path in paths:
            assert _refused("GET", port, path, headers={"Accept": "application/json"}), (port, path)
        assert _refused("PUT", port, f"/buckets/{bucket}/planted", content=TAMPERED), port
        assert _refused("DELETE", port, f"/buckets/{bucket}/{key}?recursive=true"), port
        assert _refused(
            "OPTIONS",
            port,
            f"/buckets/{bucket}/{key}",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "DELETE"},
        ), port
        assert _grpc_refused(port, f"/buckets/{bucket}"), f"gRPC answered on {port}"
    # The S3 port itself answers nobody without a signature.
    anonymous = httpx.get(f"{settings.s3_endpoint_url}/{bucket}?list-type=2", timeout=5)
    assert anonymous.status_code == 403
    assert key not in anonymous.text


def test_stored_bytes_cannot_be_read_or_rewritten_by_fid_or_filer_path(
    settings: Settings, stored: tuple[str, str]
) -> None:
    key, version = stored
    kept = seaweedfs.kept_ports_of(settings.data_dir / "s3")
    filer, volume = kept["filer.port"], kept["volume.port"]
    version_path = f"/buckets/{settings.aws_s3_bucket}/{key}.versions/v_{version}"
    fid = _fid(settings, filer, version_path)

    assert _refused("GET", volume, f"/{fid}")
    assert _refused("POST", volume, f"/{fid}", files={"file": ("x", TAMPERED)})
    assert _refused("DELETE", volume, f"/{fid}")
    assert _refused("GET", filer, version_path)
    assert _refused("PUT", filer, version_path, content=TAMPERED)
    assert _refused("POST", filer, version_path, files={"file": ("x", TAMPERED)})

    s3 = _s3(settings)
    body = s3.get_object(Bucket=settings.aws_s3_bucket, Key=key, VersionId=version)["Body"]  # type: ignore[attr-defined]
    assert body.read() == SECRET


def test_unix_sockets_and_files_are_the_owners_alone(
    settings: Settings, weed: psutil.Process
) -> None:
    storage_dir = settings.data_dir / "s3"
    assert stat.S_IMODE(storage_dir.stat().st_mode) == 0o700
    # weed writes each volume's .vif (its version and replication, no stored bytes) 0644
    # whatever the umask; the 0700 directory keeps it from others.
    exposed = [
        str(path)
        for path in storage_dir.rglob("*")
        if not path.is_symlink() and path.suffix != ".vif" and path.stat().st_mode & 0o077
    ]
    assert exposed == [], "group or others may read these"
    assert list(storage_dir.glob("*.dat")), "volumes should be on disk"

    sockets = _unix_sockets(weed)
    assert sockets
    for path in sockets:
        assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0, path
    if os.geteuid() == 0:
        assert _connectable_by_nobody(sorted(sockets)) == []


def _connectable_by_nobody(paths: list[str]) -> list[str]:
    """Connect as another local user: connecting to a Unix socket needs write permission."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child only reports back
        os.close(read_end)
        os.setgid(pwd.getpwnam("nobody").pw_gid)
        os.setuid(pwd.getpwnam("nobody").pw_uid)
        reached = []
        for path in paths:
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(path)
                    reached.append(path)
                except OSError:
                    pass
        os.write(write_end, "\n".join(reached).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as answer:
        reached = answer.read().decode()
    os.waitpid(child, 0)
    return reached.split("\n") if reached else []
