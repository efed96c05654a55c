"""GET /events as clients read it: what it says, when, across processes and reconnects."""

import asyncio
import time
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine

from dropp.core.config import Settings
from tests.events.conftest import HEARTBEAT_SECONDS, stream
from tests.helpers import (
    PASSWORD,
    Account,
    api_process,
    assert_problem,
    register_account,
    upload_file,
)


async def _share_folder(
    api: httpx.AsyncClient, engine: AsyncEngine, member: Account, name: str
) -> Account:
    owner = await register_account(api, f"ev-{uuid.uuid4().hex[:12]}@example.com", engine=engine)
    made = await api.post("/folders", json={"path": f"/{name}"}, headers=owner.headers)
    assert made.status_code == 201, made.text
    shared = await api.post(
        "/shares/people",
        json={"folder_id": made.json()["id"], "email": member.email, "permission": "viewer"},
        headers=owner.headers,
    )
    assert shared.status_code == 201, shared.text
    return owner


async def test_an_upload_is_heard_as_a_change_and_an_upload_event(
    events_url: str, api: httpx.AsyncClient, web: httpx.AsyncClient, member: Account
) -> None:
    async with stream(events_url, member) as events:
        ready = await events.expect("ready")
        assert ready.data == {"user_id": member.user_id, "heartbeat_seconds": HEARTBEAT_SECONDS}
        assert events.retry == 3000
        uploaded = await upload_file(api, web, member, "a.txt", b"hello")
        upload = await events.expect("upload")
        assert upload.data == {
            "upload_id": upload.data["upload_id"],
            "file_id": uploaded["id"],
            "name": "a.txt",
            "state": "complete",
            "size": 5,
        }
        assert [e.event for e in events.seen] == ["ready", "changes", "upload"]


async def test_an_idle_stream_is_kept_alive_by_pings(events_url: str, member: Account) -> None:
    async with stream(events_url, member) as events:
        await events.expect("ready")
        with pytest.raises(TimeoutError):
            await events.next(within=HEARTBEAT_SECONDS * 2.5)
        assert events.pings >= 2


async def test_a_share_received_is_heard(
    events_url: str, api: httpx.AsyncClient, engine: AsyncEngine, member: Account
) -> None:
    async with stream(events_url, member) as events:
        await events.expect("ready")
        owner = await _share_folder(api, engine, member, "Holiday")
        share = await events.expect("share")
        assert share.data["owner"] == owner.email
        assert (share.data["name"], share.data["kind"], share.data["role"]) == (
            "Holiday",
            "folder",
            "viewer",
        )


async def test_a_reconnect_resumes_without_loss(
    events_url: str,
    api: httpx.AsyncClient,
    web: httpx.AsyncClient,
    engine: AsyncEngine,
    member: Account,
) -> None:
    async with stream(events_url, member) as events:
        await events.expect("ready")
        last = events.last_id
    assert last is not None
    # While no stream is open.
    await upload_file(api, web, member, "while away.txt", b"missed?")
    await _share_folder(api, engine, member, "Away")
    async with stream(events_url, member, headers={"Last-Event-ID": last}) as events:
        await events.expect("share")
        kinds = [e.event for e in events.seen]
        assert kinds == ["ready", "changes", "upload", "share"]
        assert events.seen[2].data["name"] == "while away.txt"
        resumed = events.last_id
    # What was heard is not heard again.
    assert resumed is not None
    async with stream(events_url, member, headers={"Last-Event-ID": resumed}) as events:
        await events.expect("ready")
        with pytest.raises(TimeoutError):
            await events.next(within=HEARTBEAT_SECONDS * 1.5)


async def test_a_feed_cursor_says_where_the_client_read_up_to(
    events_url: str, api: httpx.AsyncClient, web: httpx.AsyncClient, member: Account
) -> None:
    page = await api.get("/sync/changes", headers=member.headers)
    cursor = page.json()["cursor"]
    await upload_file(api, web, member, "after the cursor.txt", b"new")
    async with stream(events_url, member, cursor=cursor) as events:
        await events.expect("changes")
    # From the moment it starts, without a cursor: nothing yet.
    async with stream(events_url, member) as events:
        await events.expect("ready")
        with pytest.raises(TimeoutError):
            await events.next(within=HEARTBEAT_SECONDS * 1.5)


async def test_a_change_made_through_another_api_process_is_heard(
    quiet_events_url: str,
    settings: Settings,
    web: httpx.AsyncClient,
    member: Account,
) -> None:
    with api_process(settings) as (second_url, _):
        async with (
            stream(quiet_events_url, member) as events,
            httpx.AsyncClient(base_url=second_url, timeout=30) as second,
        ):
            await events.expect("ready")
            await upload_file(second, web, member, "elsewhere.txt", b"from the other process")
            # Within seconds, where the next heartbeat's re-read is a minute away: woken by
            # the other process's NOTIFY.
            assert (await events.expect("upload", within=10)).data["name"] == "elsewhere.txt"


async def test_streams_beyond_the_cap_are_refused(
    events_url: str, api: httpx.AsyncClient, member: Account
) -> None:
    async with stream(events_url, member) as one, stream(events_url, member) as two:
        async with stream(events_url, member) as three:
            for events in (one, two, three):
                await events.expect("ready")
            refused = await api.get("/events", headers=member.headers)
            assert_problem(refused, 429, "too_many_streams")
            assert refused.headers["retry-after"]
        # A closed stream gives its place back.
        await asyncio.sleep(0.2)
        async with stream(events_url, member) as again:
            await again.expect("ready")


@pytest.mark.parametrize(
    "value", ["", "12", "1.2", "a.b.c", "1.2.3.4", "99999999999999999999.1.1", "-1.2.3"]
)
async def test_a_malformed_last_event_id_is_400(
    api: httpx.AsyncClient, member: Account, value: str
) -> None:
    answer = await api.get("/events", headers={**member.headers, "Last-Event-ID": value})
    assert_problem(answer, 400, "invalid_event_id")


async def test_a_forged_cursor_is_400(api: httpx.AsyncClient, member: Account) -> None:
    answer = await api.get("/events", params={"cursor": "forged"}, headers=member.headers)
    assert answer.status_code == 400, answer.text


async def test_an_id_older_than_what_is_kept_says_reset(events_url: str, member: Account) -> None:
    long_ago = f"1.1.{int(time.time()) - 48 * 3600}"
    async with stream(events_url, member, headers={"Last-Event-ID": long_ago}) as events:
        assert (await events.next()).event == "reset"


async def test_a_stream_needs_a_token(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/events"), 401, "not_authenticated")


async def test_a_revoked_token_ends_its_stream_at_once(
    quiet_events_url: str, member: Account
) -> None:
    async with (
        stream(quiet_events_url, member) as events,
        httpx.AsyncClient(base_url=quiet_events_url, headers=member.headers) as api,
    ):
        await events.expect("ready")
        changed = await api.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": "another horse battery"},
        )
        assert changed.status_code == 204, changed.text
        started = time.monotonic()
        with pytest.raises(AssertionError, match="the stream ended"):
            await events.next(within=10)
        # Not at the next heartbeat, a minute away.
        assert time.monotonic() - started < 5


async def test_open_streams_are_counted_in_the_metrics(
    events_url: str, api: httpx.AsyncClient, member: Account
) -> None:
    def open_streams(text: str) -> float:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "dropp_open_connections" and sample.labels == {
                    "kind": "event_stream"
                }:
                    return sample.value
        return 0.0

    before = open_streams((await api.get("/metrics")).text)
    async with stream(events_url, member) as events:
        await events.expect("ready")
        assert open_streams((await api.get("/metrics")).text) == before + 1
    await asyncio.sleep(0.2)
    assert open_streams((await api.get("/metrics")).text) == before
