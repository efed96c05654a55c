import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dropp.auth.dependencies import CurrentPrincipal
from dropp.auth.errors import InvalidToken
from dropp.core.db import SessionDep
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import NotAuthenticated, responses
from dropp.core.openapi import MAXIMUM_SETTING
from dropp.sync import cursors, service
from dropp.sync.dependencies import ChangeListenerDep, CursorKey
from dropp.sync.errors import CursorExpired, InvalidSyncCursor, TimeoutTooLong
from dropp.sync.schemas import ChangePage, LongPollRead, SyncInit

router = APIRouter(
    prefix="/sync", tags=["sync"], responses=responses(NotAuthenticated, InvalidToken)
)

CursorQuery = Annotated[str | None, Query(max_length=400, description="From the last page")]
LimitQuery = Annotated[int, Query(ge=1, le=1000)]

DEFAULT_WAIT_SECONDS = 30


@router.get("/changes", responses=responses(InvalidSyncCursor, CursorExpired))
async def list_changes(
    principal: CurrentPrincipal,
    session: SessionDep,
    key: CursorKey,
    cursor: CursorQuery = None,
    limit: LimitQuery = 500,
) -> ChangePage:
    """Your changes after `cursor`, oldest first; without one, a snapshot of your tree first."""
    return await service.changes_page(session, key, principal.user_id, cursor, limit)


@router.post("/init", responses=responses(CursorExpired))
async def init_sync(
    body: SyncInit,
    principal: CurrentPrincipal,
    session: SessionDep,
    key: CursorKey,
    limit: LimitQuery = 500,
) -> ChangePage:
    """Your changes since `last_sync_ts` (a snapshot without it): the first page of
    `GET /sync/changes`; continue there with its cursor."""
    token = None
    if body.last_sync_ts is not None:
        token = await service.cursor_since(session, key, principal.user_id, body.last_sync_ts)
    return await service.changes_page(session, key, principal.user_id, token, limit)


@router.get("/longpoll", responses=responses(InvalidSyncCursor, CursorExpired, TimeoutTooLong))
async def long_poll(
    request: Request,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    listener: ChangeListenerDep,
    key: CursorKey,
    cursor: Annotated[str, Query(max_length=400)],
    wait_seconds: Annotated[
        int | None,
        Query(
            alias="timeout",
            ge=1,
            description=f"Seconds, at most LONGPOLL_MAX_SECONDS; {DEFAULT_WAIT_SECONDS} (or "
            "LONGPOLL_MAX_SECONDS, if lower) when absent",
            json_schema_extra={MAXIMUM_SETTING: "longpoll_max_seconds"},
        ),
    ] = None,
) -> LongPollRead:
    """Answers `changes: true` as soon as you have changes after `cursor`, else `false` once
    `timeout` seconds have passed."""
    if wait_seconds is None:
        # A server may be set to wait less than the usual default; asking nothing is never
        # an error.
        wait_seconds = min(DEFAULT_WAIT_SECONDS, settings.longpoll_max_seconds)
    if wait_seconds > settings.longpoll_max_seconds:
        raise TimeoutTooLong(f"timeout may be at most {settings.longpoll_max_seconds} seconds.")
    user_id = principal.user_id
    parsed = cursors.decode(key, user_id, cursor)
    # Short sessions only: a waiting long-poll holds no pooled connection.
    sessionmaker: async_sessionmaker[AsyncSession] = request.state.sessionmaker
    async with sessionmaker() as session:
        last_id = await service.check_not_pruned(session, user_id, parsed)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    hung_up = asyncio.ensure_future(_hang_up(request))
    try:
        async with listener.waiter(user_id) as woken:
            while True:
                # Checked after registering, so a change committed just before is not missed.
                async with sessionmaker() as session:
                    if await service.has_changes_after(session, user_id, last_id):
                        return LongPollRead(changes=True)
                wake = asyncio.ensure_future(woken.wait())
                done, _ = await asyncio.wait(
                    {wake, hung_up},
                    timeout=deadline - loop.time(),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                wake.cancel()
                # Timed out; or the client is gone, and nobody reads the answer: nothing
                # is kept waiting for it, a server being stopped included.
                if wake not in done or hung_up in done:
                    return LongPollRead(changes=False)
                # A wake-up may be late news of changes the cursor already has: look again.
                woken.clear()
    finally:
        hung_up.cancel()


async def _hang_up(request: Request) -> None:
    """Returns when the client closes the connection: a GET has no body, so what the server
    receives next is the disconnect."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
