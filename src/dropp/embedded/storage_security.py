"""Locking the embedded SeaweedFS's internal ports to Dropp alone.

Besides S3 (which checks SigV4 with Dropp's keys), `weed server` opens master, volume and
filer HTTP ports and four gRPC ports, none of which authenticate by default. Each start makes
a fresh CA and one certificate signed by it, requires that certificate (mutual TLS) on every
one of those ports, and signs volume and filer requests with fresh JWT keys. The CA's private
key never reaches the disk, so nothing else can be issued a certificate; the files live in a
0700 directory, 0600 each.
"""

import datetime
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Every component weed may start in `weed server`: a section without a certificate serves
# its gRPC in the clear.
GRPC_COMPONENTS = (
    "master",
    "volume",
    "filer",
    "s3",
    "msg_broker",
    "msg_agent",
    "admin",
    "worker",
    "mq",
    "client",
)
HTTPS_COMPONENTS = ("master", "volume", "filer")
JWT_SECTIONS = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")
CERTIFICATE_DAYS = 3650


@dataclass(frozen=True, slots=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def tls_files(data_dir: Path) -> TlsFiles:
    """Where the storage's CA certificate and its one client/server key pair are kept."""
    folder = data_dir / "tls"
    return TlsFiles(ca=folder / "ca.crt", cert=folder / "node.crt", key=folder / "node.key")


def write_private(path: Path, content: bytes) -> None:
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def create_tls_files(data_dir: Path) -> TlsFiles:
    """A new CA and a certificate for 127.0.0.1 usable by servers and clients alike."""
    files = tls_files(data_dir)
    files.ca.parent.mkdir(mode=0o700, exist_ok=True)
    files.ca.parent.chmod(0o700)
    now = datetime.datetime.now(datetime.UTC)
    start, end = (
        now - datetime.timedelta(minutes=5),
        now + datetime.timedelta(days=CERTIFICATE_DAYS),
    )
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("dropp embedded storage CA"))
        .issuer_name(_name("dropp embedded storage CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("dropp embedded storage"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_private(files.ca, ca.public_bytes(serialization.Encoding.PEM))
    write_private(files.cert, cert.public_bytes(serialization.Encoding.PEM))
    write_private(
        files.key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return files


def _toml_string(value: object) -> str:
    # Paths and hex keys only: no quotes or backslashes to escape on POSIX data dirs.
    text = str(value)
    if '"' in text or "\\" in text:
        raise ValueError(f"cannot write {text!r} into security.toml")
    return f'"{text}"'


def security_toml(files: TlsFiles) -> str:
    """weed's security.toml: mutual TLS on every gRPC and internal HTTP port, JWT-signed
    volume and filer requests, with keys new on every start (tokens live 10 s)."""
    lines = ["[grpc]", f"ca = {_toml_string(files.ca)}", ""]
    for component in GRPC_COMPONENTS:
        lines += [
            f"[grpc.{component}]",
            f"cert = {_toml_string(files.cert)}",
            f"key = {_toml_string(files.key)}",
            "",
        ]
    for component in HTTPS_COMPONENTS:
        # A `ca` makes the server require and verify a client certificate.
        lines += [
            f"[https.{component}]",
            f"cert = {_toml_string(files.cert)}",
            f"key = {_toml_string(files.key)}",
            f"ca = {_toml_string(files.ca)}",
            "",
        ]
    lines += [
        "[https.client]",
        "enabled = true",
        f"cert = {_toml_string(files.cert)}",
        f"key = {_toml_string(files.key)}",
        f"ca = {_toml_string(files.ca)}",
        "",
    ]
    for section in JWT_SECTIONS:
        lines += [
            f"[{section}]",
            f"key = {_toml_string(secrets.token_hex(32))}",
            "expires_after_seconds = 10",
            "",
        ]
    # Volume and filer web UIs stay off (they are on by default without a signing key).
    lines += ["[access]", "ui = false", ""]
    return "\n".join(lines)


def write_security_config(data_dir: Path) -> TlsFiles:
    """Fresh certificates and keys, and the security.toml weed reads from its working dir."""
    files = create_tls_files(data_dir)
    write_private(data_dir / "security.toml", security_toml(files).encode())
    return files
