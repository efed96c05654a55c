"""What large request bodies do to everyone else's latency, on a throwaway embedded stack.

    python bench/bodies.py             # about 1.5 minutes
    python bench/bodies.py --help

Two `dropp serve` processes share the stack: one with the default MAX_REQUEST_BODY_BYTES, one
with the largest value the setting allows. Against each, `GET /healthz` from a few keep-alive
clients (bench/load.py) in three phases: alone (the baseline); while a few clients keep posting
31 MB JSON bodies with a declared Content-Length to `POST /auth/login`, unauthenticated; and
while they keep posting the same bodies chunked. The posting clients note how much of each body
they had sent when the answer arrived, and what the answers were.

Figures are printed, nothing is asserted.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import os
import selectors
import signal
import socket
import statistics
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import annotated_types
import httpx
from run import (
    HOST,
    MIB,
    LoadResult,
    Server,
    _exit_on_sigterm,
    background_load,
    drive_load,
    embedded_bench_stack,
    free_port,
    machine_header,
    progress,
    server_env,
    stack_roots,
    start_dropp,
    start_server,
    table,
)

from dropp.core.config import Settings

MB = 1000 * 1000
# The size of the posts that stalled every other request before the limit existed.
BIG_BODY_BYTES = 31 * MB
# How a chunked body is framed, and how much the posters hand the kernel at a time: small enough
# that an early answer is noticed within a few dozen kilobytes of it.
SEND_BYTES = 64 * 1024
HEAD_END = b"\r\n\r\n"
# The posters' own send buffer, kept small so that what they count as sent has mostly left for
# the server (Linux would otherwise grow it to megabytes on loopback).
SEND_BUFFER_BYTES = 64 * 1024
# A poster checks this often whether its phase is over, even while nothing moves.
POLL_SECONDS = 0.2
# Between phases, bodies a server is still parsing must not land in the next phase.
SETTLE_TIMEOUT_SECONDS = 30.0
IDLE_ANSWER_SECONDS = 0.05
NOTE_WIDTH = 100


def body_limit_setting() -> tuple[int, int]:
    """MAX_REQUEST_BODY_BYTES's default and the largest value Settings accepts, from the field
    itself, so the bench follows the setting if its bounds move."""
    setting = Settings.model_fields["max_request_body_bytes"]
    highest = [rule.le for rule in setting.metadata if isinstance(rule, annotated_types.Le)]
    if not isinstance(setting.default, int) or len(highest) != 1:
        raise RuntimeError("max_request_body_bytes has no integer default and upper bound")
    bound = highest[0]
    if not isinstance(bound, int):
        raise RuntimeError(f"max_request_body_bytes is bounded by {bound!r}, not an integer")
    return setting.default, bound


# --- the big bodies ------------------------------------------------------------------------


def login_body(size: int, shape: str) -> bytes:
    """A login of exactly `size` bytes whose bulk sits in one field the schema does not know,
    so a server that reads it all parses it all before refusing it (422)."""
    prefix = b'{"email":"nobody@example.com","password":"not this one","pad":'
    if shape == "numbers":
        opening, closing = b"[", b"]}"
        room = size - len(prefix) - len(opening) - len(closing)
        items = b"0" + b",0" * ((room - 1) // 2)
        # JSON allows whitespace before the closing bracket: it takes up the odd byte.
        filling = items + b" " * (room - len(items))
    else:
        opening, closing = b'"', b'"}'
        filling = b"x" * (size - len(prefix) - len(opening) - len(closing))
    body = prefix + opening + filling + closing
    if len(body) != size:
        raise RuntimeError(f"the login body came out at {len(body)} bytes, not {size}")
    return body


@dataclass(frozen=True)
class BigPost:
    """One big request's bytes as they go on the wire, and where the body's bytes sit in them
    (chunk framing is not body), so bytes sent can be told as bytes of the body sent."""

    label: str
    wire: bytes
    # (wire offset, body offset, length) of each run of body bytes, in order.
    runs: tuple[tuple[int, int, int], ...]

    def body_sent(self, wire_sent: int) -> int:
        at = bisect.bisect_right([start for start, _, _ in self.runs], wire_sent) - 1
        if at < 0:
            return 0
        wire_start, body_start, length = self.runs[at]
        return body_start + min(wire_sent - wire_start, length)


def request_head(host: str, *fields: str) -> bytes:
    lines = ["POST /auth/login HTTP/1.1", f"Host: {host}", "Content-Type: application/json"]
    return ("\r\n".join([*lines, *fields]) + "\r\n\r\n").encode()


def declared_post(host: str, body: bytes) -> BigPost:
    head = request_head(host, f"Content-Length: {len(body)}")
    return BigPost("Content-Length", head + body, ((len(head), 0, len(body)),))


def chunked_post(host: str, body: bytes) -> BigPost:
    head = request_head(host, "Transfer-Encoding: chunked")
    pieces = [head]
    runs = []
    offset = len(head)
    for start in range(0, len(body), SEND_BYTES):
        chunk = body[start : start + SEND_BYTES]
        size_line = f"{len(chunk):x}\r\n".encode()
        runs.append((offset + len(size_line), start, len(chunk)))
        pieces += [size_line, chunk, b"\r\n"]
        offset += len(size_line) + len(chunk) + 2
    pieces.append(b"0\r\n\r\n")
    return BigPost("chunked", b"".join(pieces), tuple(runs))


# --- the posting clients -------------------------------------------------------------------


def poster_socket(address: tuple[str, int]) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # Before connecting, so the buffer is fixed from the start rather than autotuned.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        sock.settimeout(10)
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    return sock


def kernel_buffered() -> int:
    """What a poster can hand its kernel on a connection whose peer reads nothing: the part of
    its "sent" figure that may never have reached the server process (at least; a peer that
    reads fast gets a larger receive window)."""
    with socket.create_server((HOST, 0)) as listener:
        host, port = listener.getsockname()[:2]
        with poster_socket((host, port)) as sock, listener.accept()[0]:
            sock.setblocking(False)
            filler = bytes(SEND_BYTES)
            sent = 0
            last_progress = time.monotonic()
            # The peer's kernel may still open its window a little after the first refusal.
            while time.monotonic() - last_progress < 0.2:
                try:
                    sent += sock.send(filler)
                    last_progress = time.monotonic()
                except BlockingIOError:
                    time.sleep(0.01)
            return sent


@dataclass
class Outcome:
    # None: the connection ended (reset, closed, refused) before any answer.
    status: int | None
    # Body bytes handed to the kernel when the answer's first byte arrived (or the end came).
    body_sent: int


def post_once(address: tuple[str, int], post: BigPost, stop: threading.Event) -> Outcome | None:
    """Sends one big request as fast as the server takes it, watching for an answer between
    sends; None when the phase ended first."""
    wire = memoryview(post.wire)
    sent = 0
    answer = b""
    answered_at: int | None = None
    try:
        sock = poster_socket(address)
    except OSError:
        time.sleep(0.01)
        return Outcome(None, 0)
    with sock, selectors.DefaultSelector() as selector:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        while not stop.is_set():
            for _, mask in selector.select(POLL_SECONDS):
                if mask & selectors.EVENT_READ:
                    try:
                        data = sock.recv(4096)
                    except OSError:
                        data = b""
                    if not data:
                        return Outcome(None, post.body_sent(sent))
                    if answered_at is None:
                        answered_at = sent
                    answer += data
                    if HEAD_END in answer:
                        return Outcome(int(answer[9:12]), post.body_sent(answered_at))
                    continue
                if mask & selectors.EVENT_WRITE:
                    try:
                        sent += sock.send(wire[sent : sent + SEND_BYTES])
                    except OSError:
                        # The server stopped reading; an answer it sent first may still be
                        # waiting in this socket's buffer.
                        selector.modify(sock, selectors.EVENT_READ)
                        continue
                    if sent == len(wire):
                        selector.modify(sock, selectors.EVENT_READ)
    return None


@dataclass
class PosterTally:
    statuses: Counter[int] = field(default_factory=Counter)
    no_answer: int = 0
    body_sent: list[int] = field(default_factory=list)


def keep_posting(
    address: tuple[str, int], post: BigPost, stop: threading.Event, tally: PosterTally
) -> None:
    while (outcome := post_once(address, post, stop)) is not None:
        if outcome.status is None:
            tally.no_answer += 1
        else:
            tally.statuses[outcome.status] += 1
            tally.body_sent.append(outcome.body_sent)


@dataclass
class Posting:
    """What the posting clients saw, over the whole time they ran (warm-up included)."""

    post: BigPost
    seconds: float = 0.0
    seen: PosterTally = field(default_factory=PosterTally)


@contextlib.contextmanager
def posting(server: Server, post: BigPost, clients: int) -> Iterator[Posting]:
    """`clients` threads posting `post` back to back until the block ends. Threads suffice:
    they spend their time in socket calls, which release the GIL, and the load generator they
    would compete with runs in its own process."""
    url = urlsplit(server.base_url)
    address = (url.hostname or HOST, url.port or 80)
    stop = threading.Event()
    tallies = [PosterTally() for _ in range(clients)]
    threads = [
        threading.Thread(target=keep_posting, args=(address, post, stop, tally), daemon=True)
        for tally in tallies
    ]
    result = Posting(post)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    try:
        yield result
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        result.seconds = time.perf_counter() - started
        for tally in tallies:
            result.seen.statuses += tally.statuses
            result.seen.no_answer += tally.no_answer
            result.seen.body_sent += tally.body_sent


def settle(server: Server) -> None:
    """Waits until the server answers promptly again: a body still being parsed after its
    client left would otherwise slow the next phase."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    with httpx.Client(base_url=server.base_url, timeout=SETTLE_TIMEOUT_SECONDS) as client:
        while time.monotonic() < deadline:
            began = time.perf_counter()
            client.get("/healthz")
            if time.perf_counter() - began < IDLE_ANSWER_SECONDS:
                return
            time.sleep(0.1)
    progress(f"warning: {server.name} still answers slowly; the next phase may suffer")


# --- phases and tables ---------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    limit: int
    load: LoadResult
    posting: Posting | None


def measure(
    server: Server,
    limit: int,
    post: BigPost | None,
    args: argparse.Namespace,
    roots: Sequence[Any],
    workdir: Path,
) -> Phase:
    name = "alone" if post is None else f"{args.posters} x {post.label} posts"
    progress(f"{name}, limit {mib(limit)}: {args.warmup:g} s warm-up + {args.seconds:g} s")
    # drive_load reads its clients and durations from these names.
    load_args = argparse.Namespace(
        concurrency=args.clients, warmup=args.warmup, duration=args.seconds
    )
    label = f"healthz-{limit}-{'alone' if post is None else post.label.lower()}"

    def healthz() -> LoadResult:
        return drive_load(
            label, server, "/healthz", None, [], roots, load_args, workdir, method="GET", expect=200
        )

    if post is None:
        return Phase(name, limit, healthz(), None)
    with posting(server, post, args.posters) as posted:
        load = healthz()
    settle(server)
    return Phase(name, limit, load, posted)


def mib(size: int) -> str:
    return f"{size / MIB:g} MiB"


def megabytes(size: float) -> str:
    return f"{size / MB:.2f}"


def answers(seen: PosterTally) -> str:
    found = [f"{count} x {status}" for status, count in sorted(seen.statuses.items())]
    return ", ".join(found) or "none"


def latency_table(phases: Sequence[Phase], args: argparse.Namespace) -> str:
    alone = {phase.limit: phase.load for phase in phases if phase.posting is None}

    def times_alone(value: float, baseline: float) -> str:
        return f"{value / baseline:.1f}x" if baseline else "-"

    rows = [
        [
            f"{phase.name}, limit {mib(phase.limit)}",
            f"{phase.load.rps:,.0f}",
            f"{phase.load.p50_ms:.1f}",
            f"{phase.load.p99_ms:.1f}",
            f"{phase.load.max_ms:.1f}",
            times_alone(phase.load.max_ms, alone[phase.limit].max_ms),
            str(phase.load.errors),
            f"{phase.load.api_cpu:.2f}",
        ]
        for phase in phases
    ]
    return table(
        f"1. GET /healthz from {args.clients} keep-alive clients, {args.warmup:g} s warm-up + "
        f"{args.seconds:g} s measured, one uvicorn worker per server",
        ["phase", "req/s", "p50 ms", "p99 ms", "max ms", "max vs alone", "errors", "API cores"],
        rows,
    )


def posts_table(phases: Sequence[Phase], args: argparse.Namespace) -> str:
    rows = []
    for phase in phases:
        if phase.posting is None:
            continue
        seen = phase.posting.seen
        sent = seen.body_sent
        rows.append(
            [
                f"{phase.name}, limit {mib(phase.limit)}",
                f"{sum(seen.statuses.values()) / phase.posting.seconds:,.1f}",
                str(seen.statuses[413]),
                answers(seen),
                str(seen.no_answer),
                megabytes(statistics.median(sent)) if sent else "-",
                megabytes(max(sent)) if sent else "-",
            ]
        )
    return table(
        f"2. The big posts: {args.posters} clients posting {BIG_BODY_BYTES / MB:g} MB JSON "
        f"({args.shape}) to POST /auth/login back to back",
        ["phase", "answered/s", "413s", "answers", "no answer", "sent MB p50", "sent MB max"],
        rows,
    )


def notes(default_limit: int, highest_limit: int, buffered: int) -> str:
    lines = [
        "max vs alone: the phase's max latency over the same server's alone phase. A request "
        "still waiting when the window closes is not counted, so a stall longer than what is "
        "left of the window shows shorter than it was. API cores: the API process's CPU over "
        f"the measured window (of {os.cpu_count()} cores).",
        f"The {mib(default_limit)} server (the default) refuses every {BIG_BODY_BYTES / MB:g} MB "
        "body 413: a declared length at once, unread; a chunked body once the limit has "
        "streamed in.",
    ]
    if highest_limit < BIG_BODY_BYTES:
        lines.append(
            f"The {BIG_BODY_BYTES / MB:g} MB body is over even the largest allowed limit "
            f"({mib(highest_limit)}), so both servers refuse it: the comparison shows only "
            "where the cut falls, not what a server that reads such bodies suffers."
        )
    else:
        lines.append(
            f"The {mib(highest_limit)} server (the largest limit allowed) takes a body this size, "
            "so it reads and parses each one whole before refusing it (422 for the unknown "
            "field, or 429 once sign-in's per-address rate limit is spent, which is counted "
            "after the parse): what any limit above the body's size amounts to. It parses each "
            "body once (the rate limiter reads FastAPI's parse), so it is not the code from "
            "before the limit, which parsed twice."
        )
    lines += [
        "Table 2 counts the posts over the whole time they ran, warm-up and measured window.",
        "sent MB: body bytes the client had handed its kernel when the answer's first byte "
        "came, an upper bound on what the server process had read: the two kernels hold "
        f"{megabytes(buffered)} MB for a peer that reads nothing (more for one that reads fast).",
        "no answer: connections that ended without one (reset, closed, refused).",
        "The posting clients run in the bench's process and share the cores with the servers "
        "and the load generator.",
    ]
    return "\n".join(textwrap.fill(line, NOTE_WIDTH, subsequent_indent="  ") for line in lines)


def run(args: argparse.Namespace) -> None:
    began = time.monotonic()
    default_limit, highest_limit = body_limit_setting()
    print(machine_header(), flush=True)
    cores = os.cpu_count() or 1
    print(f"load before starting: {background_load():.2f} of {cores} cores busy", flush=True)
    progress(f"building the {BIG_BODY_BYTES / MB:g} MB bodies ({args.shape})")
    body = login_body(BIG_BODY_BYTES, args.shape)
    with contextlib.ExitStack() as stack:
        workdir, settings = embedded_bench_stack(stack, "dropp-bench-bodies-")
        progress(
            f"starting dropp serve twice: limits {mib(default_limit)} and {mib(highest_limit)}"
        )
        servers = [
            (start_dropp(stack, settings, workdir), default_limit),
            (start_limited_dropp(stack, settings, workdir, highest_limit), highest_limit),
        ]
        roots = stack_roots(workdir)
        # One copy of each request serves both servers: nothing in Dropp looks at the port
        # in Host.
        posts: list[BigPost | None] = [None, declared_post(HOST, body), chunked_post(HOST, body)]
        del body
        phases: list[Phase] = []
        # Interleaved, so the machine's drift from minute to minute falls on both servers.
        for post in posts:
            for server, limit in servers:
                phases.append(measure(server, limit, post, args, roots, workdir))
        print("\n" + latency_table(phases, args), flush=True)
        print("\n" + posts_table(phases, args), flush=True)
        print(notes(default_limit, highest_limit, kernel_buffered()), flush=True)
        progress(f"stopping after {time.monotonic() - began:.0f} s")


def start_limited_dropp(
    stack: contextlib.ExitStack, settings: Settings, workdir: Path, limit: int
) -> Server:
    """A second `dropp serve` with MAX_REQUEST_BODY_BYTES set, stopped when `stack` closes
    (start_dropp's own name would have both servers write one log)."""
    port = free_port()
    command = [sys.executable, "-m", "dropp", "serve", "--host", HOST, "--port", str(port)]
    env = server_env(settings) | {"MAX_REQUEST_BODY_BYTES": str(limit)}
    name = f"dropp-limit-{limit}"
    return stack.enter_context(start_server(name, command, port, env, workdir))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds, not measured")
    parser.add_argument("--clients", type=int, default=4, help="GET /healthz keep-alive clients")
    parser.add_argument("--posters", type=int, default=3, help="clients posting big bodies")
    parser.add_argument(
        "--shape",
        choices=["numbers", "string"],
        default="numbers",
        help="the big body's bulk: an array of small numbers (slow to parse) or one string",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Ends the run through its `with` blocks, so the servers and the stack go too.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
