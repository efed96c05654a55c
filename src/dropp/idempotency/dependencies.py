from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dropp.auth.dependencies import CurrentPrincipal
from dropp.idempotency import service
from dropp.idempotency.service import Claim, StoredAnswer


class IdempotentReplay(Exception):
    """Answer with what the first request with this key answered."""

    def __init__(self, answer: StoredAnswer) -> None:
        super().__init__(answer.status)
        self.answer = answer


async def replay_response(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IdempotentReplay)
    return JSONResponse(
        exc.answer.body, status_code=exc.answer.status, headers={"Idempotent-Replayed": "true"}
    )


async def claim_idempotency_key(
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[
        str | None,
        Header(
            description="Any unique string (a UUID): a retry with the same key and body within "
            "24 hours gets the first answer instead of starting another upload."
        ),
    ] = None,
) -> AsyncIterator[Claim | None]:
    """Claim the request's Idempotency-Key, or answer it from the stored first answer.

    Declared before the session, so it is closed after it: a failure anywhere, the commit
    included, releases the claim for a corrected retry.
    """
    if idempotency_key is None:
        yield None
        return
    key = service.check_key(idempotency_key)
    sessionmaker: async_sessionmaker[AsyncSession] = request.state.sessionmaker
    hashed = service.request_hash(request.method, request.url.path, await request.body())
    outcome = await service.claim(sessionmaker, principal.user_id, key, hashed)
    if isinstance(outcome, StoredAnswer):
        raise IdempotentReplay(outcome)
    try:
        yield outcome
    except Exception:
        await service.release(sessionmaker, outcome)
        raise


IdempotencyClaim = Annotated[Claim | None, Depends(claim_idempotency_key, scope="function")]
