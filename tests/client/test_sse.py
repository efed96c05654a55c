"""The client's Server-Sent Events parser, against what the HTML standard says a stream means
however its bytes are cut into chunks."""

import pytest

from dropp.client.sync.events import Event, Parser


def parse(*chunks: bytes) -> tuple[list[Event], Parser]:
    parser = Parser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events, parser


def bytewise(stream: bytes) -> list[Event]:
    """The stream one byte at a time: every line end and character split somewhere."""
    return parse(*(stream[i : i + 1] for i in range(len(stream))))[0]


def test_a_stream_as_the_server_sends_it() -> None:
    stream = (
        b"retry: 3000\n\n"
        b'event: ready\nid: 1842.77.1700000000\ndata: {"user_id": "u"}\n\n'
        b": ping\n\n"
        b"event: changes\nid: 1845.77.1700000001\ndata: {}\n\n"
    )
    events, parser = parse(stream)
    assert events == [
        Event("ready", '{"user_id": "u"}', "1842.77.1700000000"),
        Event("changes", "{}", "1845.77.1700000001"),
    ]
    assert parser.last_id == "1845.77.1700000001"
    assert parser.retry == 3.0
    assert bytewise(stream) == events


def test_data_lines_join_with_line_feeds_and_one_leading_space_goes() -> None:
    events, _ = parse(b"data:first\ndata:  second\ndata\ndata: \n\n")
    assert events == [Event("message", "first\n second\n\n", "")]


def test_comments_and_unknown_fields_are_ignored_and_a_block_without_data_is_no_event() -> None:
    events, _ = parse(b": ping\n\n:\n\nevent: changes\n\nfoo: bar\ndata: x\n\n")
    # The `event` of the block without data does not carry over to the next one.
    assert events == [Event("message", "x", "")]


@pytest.mark.parametrize("end", [b"\r\n", b"\r", b"\n"])
def test_every_line_end_is_one_line_end_even_split_across_chunks(end: bytes) -> None:
    stream = end.join([b"event: changes", b"id: 7", b"data: a", b"data: b", b"", b""])
    expected = [Event("changes", "a\nb", "7")]
    assert parse(stream)[0] == expected
    assert bytewise(stream) == expected


def test_an_id_holds_until_changed_and_an_empty_one_clears_it() -> None:
    events, parser = parse(
        b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: 2\n\nid: nul\x00here\ndata: d\n\n"
    )
    assert [(event.data, event.id) for event in events] == [
        ("a", "1"),
        ("b", "1"),
        ("c", ""),
        ("d", "2"),
    ]
    # An id in a block without data still counts, and one with a NUL is ignored.
    assert parser.last_id == "2"


def test_a_resumed_stream_keeps_the_last_id_until_it_sends_one() -> None:
    parser = Parser(last_id="5.3.1700000000")
    assert parser.feed(b"event: reset\ndata: {}\n\n") == [Event("reset", "{}", "5.3.1700000000")]


def test_retry_takes_only_ascii_digits() -> None:
    _, parser = parse(b"retry: 1500\n\nretry: 2s\n\nretry: \xc2\xb2\n\n")
    assert parser.retry == 1.5


def test_an_unfinished_event_is_not_dispatched() -> None:
    events, _ = parse(b"event: changes\ndata: {}\n")
    assert events == []


def test_a_leading_byte_order_mark_and_split_utf8_characters() -> None:
    stream = "\ufeffdata: café\n\n".encode()
    assert bytewise(stream) == [Event("message", "café", "")]
    # Only at the very start.
    events, _ = parse("data: \ufeffx\n\n".encode())
    assert events == [Event("message", "\ufeffx", "")]
