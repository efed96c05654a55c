"""Wake-ups for the sockets this process serves: a NOTIFY naming a transfer wakes its peers
here, which then take their messages from the database."""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

logger = logging.getLogger(__name__)


class Relay:
    def __init__(self) -> None:
        self._mailboxes: defaultdict[UUID, set[asyncio.Event]] = defaultdict(set)

    @contextmanager
    def mailbox(self, transfer_id: UUID) -> Iterator[asyncio.Event]:
        """An event set whenever a message for this transfer may be waiting. It starts set:
        what was sent before the block began is taken at once."""
        event = asyncio.Event()
        event.set()
        self._mailboxes[transfer_id].add(event)
        try:
            yield event
        finally:
            boxes = self._mailboxes[transfer_id]
            boxes.discard(event)
            if not boxes:
                del self._mailboxes[transfer_id]

    def on_notify(self, payload: str) -> None:
        try:
            transfer_id = UUID(payload)
        except ValueError:
            logger.warning("p2p: ignored a notification with payload %r", payload)
            return
        for event in self._mailboxes.get(transfer_id, ()):
            event.set()

    async def on_connect(self, _connection: Any) -> None:
        # Notifications sent while the listener was away are lost: every socket looks.
        for boxes in self._mailboxes.values():
            for event in boxes:
                event.set()
