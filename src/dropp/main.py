"""The ASGI application: `create_app(settings)` and its lifespan."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from dropp import __version__
from dropp.admin.router import router as admin_router
from dropp.auth import revocations
from dropp.auth.email_router import router as email_router
from dropp.auth.router import router as auth_router
from dropp.auth.service import TokenIssuer
from dropp.auth.tokens import AccessTokenSigner
from dropp.core.body_limit import BodyLimitMiddleware
from dropp.core.config import Settings
from dropp.core.db import create_engine, create_sessionmaker
from dropp.core.errors import install_error_handlers
from dropp.core.openapi import install_contract
from dropp.core.rate_limit import RateLimiter, check_rate_limit_settings, open_rate_limiter
from dropp.core.request_id import RequestIdMiddleware
from dropp.core.strings import RefuseUnstorableText
from dropp.events.router import router as events_router
from dropp.events.stream import OpenStreams
from dropp.file_requests.public_router import router as file_requests_public_router
from dropp.file_requests.router import router as file_requests_router
from dropp.files.folders_router import router as folders_router
from dropp.files.name_policy import NamePolicyMiddleware
from dropp.files.revisions_router import router as revisions_router
from dropp.files.router import router as files_router
from dropp.health.router import router as health_router
from dropp.idempotency.dependencies import IdempotentReplay, replay_response
from dropp.mail.sender import Mailer, create_mailer
from dropp.oauth.provider import OpenIDProvider
from dropp.oauth.router import router as oauth_router
from dropp.observability.database import POOLS
from dropp.observability.middleware import MetricsMiddleware
from dropp.observability.router import router as metrics_router
from dropp.observability.storage import instrument as instrument_storage
from dropp.p2p.codes import code_key
from dropp.p2p.relay import Relay
from dropp.p2p.router import router as p2p_router
from dropp.p2p.service import CHANNEL as P2P_CHANNEL
from dropp.p2p.signaling import Signaling
from dropp.quotas.router import router as quotas_router
from dropp.sharing.links_router import router as share_links_router
from dropp.sharing.people_router import router as share_people_router
from dropp.sharing.public_router import router as share_links_public_router
from dropp.storage.s3 import Storage, open_storage
from dropp.sweeper.runner import background_sweeper
from dropp.sync.listener import ChangeListener
from dropp.sync.router import router as sync_router
from dropp.uploads.router import router as uploads_router
from dropp.web.account.router import public as web_public_router
from dropp.web.account.router import router as web_account_router
from dropp.web.admin.router import router as web_admin_router
from dropp.web.docs import STATIC, STATIC_PATH
from dropp.web.docs import router as docs_router
from dropp.web.file_requests.router import router as web_file_requests_router
from dropp.web.files.router import router as web_files_router
from dropp.web.p2p.router import router as web_p2p_router
from dropp.web.router import router as web_router
from dropp.web.sharing.router import router as web_sharing_router
from dropp.web.visitors import PageRefusal, refusal_page


class State(TypedDict):
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    storage: Storage
    token_issuer: TokenIssuer
    rate_limiter: RateLimiter
    mailer: Mailer
    oidc_provider: OpenIDProvider
    change_listener: ChangeListener
    event_streams: OpenStreams
    p2p_signaling: Signaling


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[State]:
    settings: Settings = app.state.settings
    async with AsyncExitStack() as stack:
        engine = create_engine(settings)
        stack.push_async_callback(engine.dispose)
        stack.enter_context(POOLS.tracking(engine))
        storage = await stack.enter_async_context(open_storage(settings))
        instrument_storage(storage.client)
        rate_limiter = await stack.enter_async_context(open_rate_limiter(settings))
        assert settings.secret_key is not None
        signer = AccessTokenSigner.from_secret(
            settings.secret_key.get_secret_value(), settings.access_token_ttl_seconds
        )
        sessionmaker = create_sessionmaker(engine)
        # Long-poll wake-ups: its own connection, outside the pool.
        listener = ChangeListener.for_engine(engine, settings.db_connect_timeout_seconds)
        # Revoked tokens, refused by every process: fed on the same connection.
        listener.subscribe(
            revocations.CHANNEL, signer.revocations.on_notify, signer.revocations.reload
        )
        # Event streams whose token a revocation refuses end at once.
        event_streams = OpenStreams(settings.events_max_connections)
        signer.revocations.watch(event_streams.check_revoked)
        # Signaling between peers whose sockets two processes may serve.
        relay = Relay()
        listener.subscribe(P2P_CHANNEL, relay.on_notify, relay.on_connect)
        change_listener = await stack.enter_async_context(listener.running())
        # Stopped first on shutdown, while the database and storage are still open.
        await stack.enter_async_context(background_sweeper(sessionmaker, storage, settings))
        yield {
            "settings": settings,
            "sessionmaker": sessionmaker,
            "storage": storage,
            "token_issuer": TokenIssuer(signer, settings.refresh_token_ttl_seconds),
            "rate_limiter": rate_limiter,
            "mailer": create_mailer(settings),
            "oidc_provider": OpenIDProvider(settings),
            "change_listener": change_listener,
            "event_streams": event_streams,
            "p2p_signaling": Signaling(
                settings=settings,
                sessionmaker=sessionmaker,
                storage=storage,
                signer=signer,
                rate_limiter=rate_limiter,
                relay=relay,
                code_key=code_key(settings.secret_key.get_secret_value()),
            ),
        }


def create_app(settings: Settings) -> FastAPI:
    settings.require_runnable()
    check_rate_limit_settings(settings)
    app = FastAPI(
        title="Dropp",
        version=__version__,
        summary="File hosting, sync and sharing for desktop clients.",
        lifespan=lifespan,
        # /docs is served by dropp.web.docs from the package's own copy of Swagger UI, with
        # a CSP; FastAPI's would load it (and ReDoc) from a CDN.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_contract(app)
    app.add_middleware(RefuseUnstorableText)
    app.add_middleware(
        NamePolicyMiddleware,
        allow_windows_incompatible_names=settings.allow_windows_incompatible_names,
    )
    # Outside the others that read requests: none of them reads a body over the limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    if settings.forwarded_allow_ips:
        # Here rather than in uvicorn, so that the request id's middleware, outside it, sees
        # the peer itself.
        trusted = "*" if "*" in settings.forwarded_allow_ips else list(settings.forwarded_allow_ips)
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=trusted)
    app.add_middleware(RequestIdMiddleware, trusted_proxies=settings.forwarded_allow_ips)
    # Outside even those: a request refused for its size is counted too.
    app.add_middleware(MetricsMiddleware)
    app.add_exception_handler(IdempotentReplay, replay_response)
    app.add_exception_handler(PageRefusal, refusal_page)
    app.include_router(metrics_router)
    for router in (health_router, auth_router, email_router, uploads_router, files_router):
        app.include_router(router)
    app.include_router(revisions_router)
    app.include_router(folders_router)
    app.include_router(quotas_router)
    app.include_router(admin_router)
    app.include_router(oauth_router)
    app.include_router(web_router)
    app.include_router(web_files_router)
    app.include_router(web_account_router)
    app.include_router(web_public_router)
    app.include_router(web_sharing_router)
    app.include_router(web_file_requests_router)
    app.include_router(web_p2p_router)
    app.include_router(web_admin_router)
    app.include_router(docs_router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC), name="static")
    app.include_router(sync_router)
    app.include_router(events_router)
    app.include_router(p2p_router)
    for router in (
        share_links_router,
        share_links_public_router,
        share_people_router,
        file_requests_router,
        file_requests_public_router,
    ):
        app.include_router(router)
    return app
