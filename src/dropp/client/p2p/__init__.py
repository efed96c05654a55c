"""Peer-to-peer transfer (docs/p2p.md): `dropp send` and `dropp receive`.

The server introduces the two peers and relays their WebRTC signaling over a WebSocket; the
file goes over a data channel between them, or through storage when they cannot reach each
other. aiortc and websockets are the `p2p` extra: only `require()` and the modules it guards
import them, so a client installed without the extra still starts and says what is missing.
"""

from dropp.client.errors import ClientError

MISSING_EXTRA = "Peer-to-peer transfer needs aiortc and websockets: install dropp[p2p]"


def require() -> None:
    """Raise a ClientError naming the extra when its packages are missing."""
    try:
        import aiortc  # noqa: F401
        import websockets  # noqa: F401
    except ImportError as error:
        raise ClientError(f"{MISSING_EXTRA} ({error.name or error} is missing).") from error
