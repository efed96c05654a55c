import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dropp.auth.dependencies import CurrentPrincipal
from dropp.auth.errors import InvalidToken
from dropp.auth.tokens import AccessTokenSigner
from dropp.core.dependencies import SettingsDep
from dropp.core.errors import NotAuthenticated, responses
from dropp.events import service
from dropp.events.errors import InvalidEventId, TooManyStreams
from dropp.events.service import Position
from dropp.events.stream import (
    EVENT_ID_PATTERN,
    EventStreamResponse,
    OpenStreams,
    Stream,
    parse_event_id,
)
from dropp.sync import cursors
from dropp.sync import service as sync_service
from dropp.sync.dependencies import ChangeListenerDep, CursorKey
from dropp.sync.errors import CursorExpired, InvalidSyncCursor

router = APIRouter(tags=["events"], responses=responses(NotAuthenticated, InvalidToken))

EVENT_STREAM = EventStreamResponse.media_type
# One event of the stream (before OpenAPI 3.2, a stream's `schema` describes each event).
EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "event": {"enum": ["ready", "changes", "upload", "share", "transfer", "reset"]},
        "id": {"type": "string", "pattern": EVENT_ID_PATTERN},
        "data": {"type": "string", "contentMediaType": "application/json"},
        "retry": {"type": "integer"},
    },
    "required": ["event", "id", "data"],
}


@router.get(
    "/events",
    status_code=200,
    response_class=EventStreamResponse,
    responses={
        200: {
            "content": {EVENT_STREAM: {"schema": EVENT_SCHEMA}},
            "description": "Server-Sent Events",
        },
        **responses(InvalidEventId, InvalidSyncCursor, CursorExpired, TooManyStreams),
    },
    # Read from the request by the route: a header parameter of FastAPI's would be documented
    # as "a string or null", and no null is an id.
    openapi_extra={
        "parameters": [
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "description": "The `id` of the last event seen, to resume after it.",
                "schema": {"type": "string", "pattern": EVENT_ID_PATTERN},
            }
        ]
    },
)
async def stream_events(
    request: Request,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    listener: ChangeListenerDep,
    key: CursorKey,
    cursor: Annotated[
        str | None, Query(max_length=400, description="Hint at changes after this feed cursor")
    ] = None,
) -> EventStreamResponse:
    """Your account's live events (docs/events.md): `changes` when the feed moves, `upload`,
    `share` and `transfer` as they happen, a `: ping` every EVENTS_HEARTBEAT_SECONDS."""
    user_id = principal.user_id
    last_event_id = request.headers.get("last-event-id")
    resume = parse_event_id(last_event_id) if last_event_id is not None else None
    parsed = cursors.decode(key, user_id, cursor) if cursor is not None else None
    streams: OpenStreams = request.state.event_streams
    signer: AccessTokenSigner = request.state.token_issuer.signer
    sessionmaker: async_sessionmaker[AsyncSession] = request.state.sessionmaker
    first = None
    # Short sessions only: an open stream holds no pooled connection.
    async with sessionmaker() as session:
        position = await service.current_position(session, user_id)
        if parsed is not None:
            after = await sync_service.check_not_pruned(session, user_id, parsed)
            position = Position(after, position.event_id)
    if resume is not None:
        position = resume.position
        if resume.checked_at < time.time() - settings.events_keep_hours * 3600:
            first = "reset"
    ticket, release = streams.take(
        user_id,
        lambda: signer.revocations.refuses(principal),
        settings.outage_retry_after_seconds,
    )
    stream = Stream(
        user_id=user_id,
        position=position,
        sessionmaker=sessionmaker,
        listener=listener,
        heartbeat_seconds=settings.events_heartbeat_seconds,
        ends_at=min(
            principal.issued_at + signer.ttl.total_seconds(),
            time.time() + settings.events_max_seconds,
        ),
        ticket=ticket,
    )
    return EventStreamResponse(stream.lines(first), on_close=release)
