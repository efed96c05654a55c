"""Declarative base, engine factory and the per-request session."""

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from fastapi import Depends, Request
from sqlalchemy import (
    ColumnElement,
    CursorResult,
    DateTime,
    Dialect,
    Executable,
    Label,
    MetaData,
    String,
    Text,
    TypeDecorator,
    cast,
    func,
)
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Mapped, mapped_column

from dropp.core.config import Settings
from dropp.core.errors import DroppError, OutcomeUnknown, outage_of

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True)}


def created_at_column() -> Mapped[datetime]:
    return mapped_column(server_default=func.now())


class EnumText(TypeDecorator[StrEnum]):
    """A VARCHAR(16) of a StrEnum's values, read back as its members, as the models declare.

    Plain text, not a PostgreSQL enum type: adding a value needs no type migration.
    """

    impl = String(16)
    cache_ok = True

    def __init__(self, enum: type[StrEnum]) -> None:
        super().__init__()
        self.enum = enum
        self._members = _Members(enum)

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any]:
        # A dict's own lookup, called from C: SQLAlchemy's Enum converts in Python, which
        # cost a millisecond on a 1,000-row page.
        return self._members.__getitem__


class _Members(dict[str | None, StrEnum | None]):
    """Each value's member, and NULL's None; any other value is an error, not a None."""

    def __init__(self, enum: type[StrEnum]) -> None:
        super().__init__({member.value: member for member in enum})
        self[None] = None
        self.enum = enum

    def __missing__(self, value: str | None) -> StrEnum:
        raise ValueError(f"{value!r} is not a {self.enum.__name__}")


# asyncpg prepares every statement, and after five runs PostgreSQL may switch a prepared
# statement to a generic plan, made without the parameters' values: one plan for the account
# with ten files and for the one with a million. Per-account data is that skewed, and a plan
# fit for the average is wrong for someone. Planning each run costs tenths of a millisecond.
SESSION_SETTINGS = {"plan_cache_mode": "force_custom_plan"}


def create_engine(settings: Settings) -> AsyncEngine:
    return create_async_engine(
        settings.async_database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        # No pre-ping: it costs three round trips per checkout. Connections are recycled
        # instead, and a connection lost to a database restart fails one request, not all.
        pool_recycle=1800,
        # Bounds, so a stopped or frozen database costs a request a 503 within seconds: the
        # wait for a pooled connection, the connect itself, and every statement, both on the
        # client (command_timeout, which also covers a server that stopped answering) and on
        # the server (statement_timeout, which also frees the server's side).
        pool_timeout=settings.db_connect_timeout_seconds,
        connect_args={
            "timeout": settings.db_connect_timeout_seconds,
            "command_timeout": settings.db_statement_timeout_seconds,
            "server_settings": session_settings(settings),
        },
    )


def session_settings(settings: Settings) -> dict[str, str]:
    """The server settings of every pooled connection."""
    milliseconds = int(settings.db_statement_timeout_seconds * 1000)
    return {**SESSION_SETTINGS, "statement_timeout": str(milliseconds)}


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One request, one transaction: committed when the route returns, rolled back if it raises.

    A route may commit earlier itself when a side effect outside the database (deleting stored
    objects) must only happen once the rows are gone.
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except DroppError as error:
            await (session.commit() if error.persists_changes else session.rollback())
            raise
        except BaseException:
            await session.rollback()
            raise
        try:
            await session.commit()
        except Exception as error:
            if outage_of(error) is None:
                raise
            # The COMMIT may have reached the server before it stopped answering: whether the
            # change was kept cannot be known here, and the client must be told so.
            retry_after = str(request.app.state.settings.outage_retry_after_seconds)
            raise OutcomeUnknown(
                "The database stopped answering while saving this change: it may or may not "
                "have been saved. Check, or repeat it with the same Idempotency-Key.",
                headers={"Retry-After": retry_after},
            ) from error


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def fetch_rows(
    session: AsyncSession, query: Executable, values: dict[str, Any] | None = None
) -> CursorResult[*tuple[Any, ...]]:
    """The rows of a page's query, run by Core on the session's connection and transaction:
    the ORM's row loading, which plain columns do not need, cost 1.4 ms on 1,000 rows."""
    return await (await session.connection()).execute(query, values)


async def fetch_dicts(
    session: AsyncSession, query: Executable, values: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The rows as plain dicts, as a page's entries: `Row._asdict()` rebuilds the column names
    for every row, which cost more than the query on a 1,000-row page."""
    result = await fetch_rows(session, query, values)
    columns = list(result.keys())
    return [dict(zip(columns, row, strict=True)) for row in result]


def as_text(column: ColumnElement[Any] | InstrumentedAttribute[Any], name: str) -> Label[str]:
    """The column as PostgreSQL prints it: for the UUIDs of a page's entries
    (`core.schemas.UuidText`)."""
    return cast(column, Text).label(name)
