from uuid import UUID

from fastapi import APIRouter, Request, WebSocket, status

from dropp.auth.dependencies import CurrentPrincipal
from dropp.auth.errors import InvalidToken
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import NotAuthenticated, responses
from dropp.p2p import cloud
from dropp.p2p.errors import FileTooBigForCloud, NotStored, TransferFinished, TransferNotFound
from dropp.p2p.schemas import CloudUpload
from dropp.p2p.signaling import PeerSocket, Signaling
from dropp.storage.dependencies import StorageDep

router = APIRouter(prefix="/p2p", tags=["p2p"])


@router.websocket("")
async def signaling_socket(websocket: WebSocket) -> None:
    """Signaling between the two peers of a transfer: docs/p2p.md."""
    signaling: Signaling = websocket.state.p2p_signaling
    await PeerSocket(websocket, signaling).serve()


@router.post(
    "/transfers/{transfer_id}/upload",
    responses=responses(
        NotAuthenticated, InvalidToken, TransferNotFound, TransferFinished, FileTooBigForCloud
    ),
)
async def cloud_upload(
    transfer_id: UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
) -> CloudUpload:
    """The cloud fallback's upload form: storage takes exactly the declared file (its size and
    SHA-256), for this transfer only. Post it, then call `.../stored`."""
    return await cloud.upload_form(session, storage, settings, principal.user_id, transfer_id)


@router.post(
    "/transfers/{transfer_id}/stored",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(
        NotAuthenticated, InvalidToken, TransferNotFound, TransferFinished, NotStored
    ),
)
async def cloud_stored(
    transfer_id: UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    storage: StorageDep,
    request: Request,
) -> None:
    """Storage holds the file: the receiver gets its one download link."""
    await cloud.confirm_stored(session, storage, principal.user_id, transfer_id)
