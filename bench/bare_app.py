"""The floor for upload-init: the least work an endpoint with the same job could do.

One INSERT through a SQLAlchemy AsyncSession on an asyncpg engine (pool_size 20,
max_overflow 10, as Dropp's defaults), one aioboto3 `generate_presigned_post` on the same bucket
with the same credentials, JSON back. No auth, no pre-ping, no ORM objects: whatever Dropp's
upload-init costs beyond this is its own overhead.

Configured from the environment Dropp reads (DATABASE_URL, S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_S3_BUCKET) and served by uvicorn with one worker:

    python bench/bare_app.py --host 127.0.0.1 --port 8001
"""

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypedDict
from uuid import uuid4

import aioboto3
import uvicorn
from botocore.config import Config
from fastapi import FastAPI, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import Column, DateTime, MetaData, Table, Text, Uuid, func, insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

metadata = MetaData()
bench_row = Table(
    "bench_row",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("key", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
)
CREATE_TABLE = text(
    "CREATE TABLE IF NOT EXISTS bench_row ("
    "id uuid PRIMARY KEY, key text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
)
UPLOAD_TTL_SECONDS = 3600


class UploadCreate(BaseModel):
    filename: str = Field(max_length=1024)
    size: int = Field(ge=0)


class State(TypedDict):
    sessionmaker: async_sessionmaker[AsyncSession]
    s3: Any
    bucket: str


def async_database_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"postgresql+asyncpg{sep}{rest}" if scheme in {"postgres", "postgresql"} else url


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[State]:
    engine = create_async_engine(
        async_database_url(os.environ["DATABASE_URL"]), pool_size=20, max_overflow=10
    )
    try:
        async with engine.begin() as connection:
            await connection.execute(CREATE_TABLE)
        session = aioboto3.Session(
            aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
            region_name=os.environ.get("AWS_REGION", "us-east-1"),
        )
        # The signing-relevant parts of Dropp's client config, so both sign the same way.
        config = Config(signature_version="s3v4", s3={"addressing_style": "path"})
        async with session.client(
            "s3", endpoint_url=os.environ["S3_ENDPOINT_URL"], config=config
        ) as s3:
            yield {
                "sessionmaker": async_sessionmaker(engine, expire_on_commit=False),
                "s3": s3,
                "bucket": os.environ.get("AWS_S3_BUCKET", "dropp"),
            }
    finally:
        await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/bare", status_code=status.HTTP_201_CREATED)
async def bare(body: UploadCreate, request: Request) -> dict[str, Any]:
    key = f"bench/{uuid4().hex}"
    sessionmaker: async_sessionmaker[AsyncSession] = request.state.sessionmaker
    async with sessionmaker() as session:
        await session.execute(insert(bench_row).values(id=uuid4(), key=key))
        await session.commit()
    # Same policy shape as Dropp's form, so the signing work is comparable.
    content_type = "text/plain"
    post = await request.state.s3.generate_presigned_post(
        Bucket=request.state.bucket,
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[
            ["eq", "$key", key],
            ["content-length-range", body.size, body.size],
            ["eq", "$Content-Type", content_type],
        ],
        ExpiresIn=UPLOAD_TTL_SECONDS,
    )
    return {"key": key, "upload": {"url": post["url"], "fields": post["fields"]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    # Dropp's `serve` settings (proxy headers on, no Server header) at warning level, so the
    # only difference between the two servers is the application.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        proxy_headers=True,
        server_header=False,
    )


if __name__ == "__main__":
    main()
