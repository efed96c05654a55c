"""Where a received file lands: `.<name>.dropp-part` while its bytes arrive, hashed as they
come; renamed into place once its SHA-256 is the declared one, under a free name."""

import hashlib
import os
from pathlib import Path

from dropp.client.p2p.protocol import FileOffer
from dropp.client.sync.names import MAX_NAME_BYTES
from dropp.client.transfers import TransferError, part_file


def numbered(name: str, number: int) -> str:
    """`report.pdf` -> `report (2).pdf`; a dotfile gets the number at the end (the server's
    rule for names taken, so a file is named alike wherever it lands)."""
    stem, ext = name, ""
    dot = name.rfind(".")
    if dot > 0:
        stem, ext = name[:dot], name[dot:]
    suffix = f" ({number}){ext}"
    while stem and len((stem + suffix).encode()) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem + suffix


class PartFile:
    """The bytes received so far. Its methods block, briefly: the receiver calls them from
    aiortc's callbacks, in the order the bytes arrive."""

    def __init__(self, folder: Path, offer: FileOffer) -> None:
        self.folder = folder
        self.offer = offer
        path = part_file(folder / offer.name)
        if len(path.name.encode()) > MAX_NAME_BYTES:
            # A name near the limit leaves no room for the dot and the suffix.
            path = folder / f".{hashlib.sha256(offer.name.encode()).hexdigest()[:16]}.dropp-part"
        self.path = path
        self.received = 0
        self._digest = hashlib.sha256()
        try:
            self._handle = self.path.open("wb")
        except OSError as error:
            raise TransferError(f"{self.path}: {error.strerror or error}") from error

    @property
    def complete(self) -> bool:
        return self.received == self.offer.size

    def write(self, data: bytes) -> None:
        """Append; more bytes than declared raise (the file is then discarded)."""
        if self.received + len(data) > self.offer.size:
            raise TransferError(
                f"The sender sent more than the {self.offer.size} bytes it declared: "
                "the file was discarded."
            )
        try:
            self._handle.write(data)
        except OSError as error:
            raise TransferError(f"{self.path}: {error.strerror or error}") from error
        self._digest.update(data)
        self.received += len(data)

    def reset(self) -> None:
        """Start again from nothing (the bytes will come another way)."""
        self._handle.seek(0)
        self._handle.truncate()
        self._digest = hashlib.sha256()
        self.received = 0

    def finish(self) -> Path:
        """Check the SHA-256, then rename into place without replacing anything; the path
        the file took."""
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as error:
            raise TransferError(f"{self.path}: {error.strerror or error}") from error
        finally:
            self._handle.close()
        if self._digest.hexdigest() != self.offer.sha256:
            raise TransferError(
                f"The bytes received for {self.offer.name} do not match the SHA-256 the sender "
                "declared: the file was discarded."
            )
        return self._place()

    def _place(self) -> Path:
        number = 1
        while True:
            name = self.offer.name if number == 1 else numbered(self.offer.name, number)
            target = self.folder / name
            try:
                # A hard link never replaces what has the name (a rename would, on POSIX).
                os.link(self.path, target)
            except FileExistsError:
                number += 1
                continue
            except OSError:
                # A file system without hard links: checked, then renamed.
                if os.path.lexists(target):
                    number += 1
                    continue
                try:
                    os.rename(self.path, target)
                except OSError as error:
                    raise TransferError(f"{target}: {error.strerror or error}") from error
                return target
            self.path.unlink()
            return target

    def discard(self) -> None:
        self._handle.close()
        self.path.unlink(missing_ok=True)
