"""Request bodies over MAX_REQUEST_BODY_BYTES, sent to a real server over TCP: refused 413
before they are read, while other requests go on."""

import asyncio
from collections.abc import Iterator

import pytest

from dropp.core.config import Settings
from dropp.embedded.seaweedfs import free_port
from dropp.main import create_app
from tests.helpers import MIB, serve_in_thread

BIG = 31 * 1000 * 1000


@pytest.fixture(scope="module")
def server_port(settings: Settings) -> Iterator[int]:
    port = free_port()
    app = create_app(settings.model_copy(update={"max_request_body_bytes": MIB}))
    with serve_in_thread(app, port, name="dropp-body-limit"):
        yield port


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


async def small_request(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: dropp.test\r\nConnection: close\r\n\r\n")
    await writer.drain()
    status, _ = await read_answer(reader)
    writer.close()
    return status


async def test_a_declared_31_mb_body_is_refused_unread(server_port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server_port)
    writer.write(
        b"POST /auth/login HTTP/1.1\r\nHost: dropp.test\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {BIG}\r\n\r\n".encode()
        + b'{"email": "'
    )
    await writer.drain()

    # Not one more byte of the body is sent: the answer comes without it. (The timeout only
    # keeps a server that waits for the body from hanging the suite.)
    async with asyncio.timeout(30):
        status, body = await read_answer(reader)
    other = await small_request(server_port)

    writer.close()
    assert status == 413
    assert b'"request_body_too_large"' in body
    assert other == 200


async def test_a_chunked_body_is_cut_at_the_limit_while_others_are_served(
    server_port: int,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server_port)
    writer.write(
        b"POST /auth/login HTTP/1.1\r\nHost: dropp.test\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * (256 * 1024)
    # Half the limit, then a request of someone else's while this body is still open.
    for _ in range(2):
        writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    await writer.drain()
    other = await small_request(server_port)
    answer = asyncio.create_task(read_answer(reader))
    sent = 2 * len(chunk)
    while not answer.done() and sent < BIG:
        writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        try:
            await writer.drain()
        except ConnectionError:
            break
        sent += len(chunk)
        await asyncio.sleep(0)
    async with asyncio.timeout(30):
        status, body = await answer

    writer.close()
    assert other == 200
    assert status == 413
    assert b'"request_body_too_large"' in body
    # Cut near the limit, far from the 31 MB a client could send.
    assert sent < 8 * MIB


async def test_a_client_that_sends_on_before_it_reads_still_gets_its_413(server_port: int) -> None:
    """Many clients only read once they are done writing. Closing while their bytes still
    come makes the kernel reset the connection, and a reset loses the 413 they never read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server_port)
    writer.write(
        b"POST /auth/login HTTP/1.1\r\nHost: dropp.test\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * (256 * 1024)
    loop = asyncio.get_running_loop()
    until = loop.time() + 0.4
    while loop.time() < until:
        writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        await writer.drain()
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    async with asyncio.timeout(30):
        status, body = await read_answer(reader)

    writer.close()
    assert status == 413
    assert b'"request_body_too_large"' in body
