"""SSETransport's own reader of chunked bodies (``_ChunkedBody``), against a raw loopback server:
whatever the chunks and the writes look like, the same events come out, every piece of payload
that arrived is delivered by one read, broken framing fails the stream, and a body read to its
end leaves its connection for the next request."""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest

from openai_ws.exceptions import ConnectionClosed, StreamTimeout
from openai_ws.transports import SSETransport
from tests.conftest import KEY, TIME_FACTOR
from tests.transports.test_http_framing import ScriptServer, chunk, chunked_head, script

EVENTS = script(6)
TYPES = ["response.created", *["response.output_text.delta"] * 4, "response.completed"]
TEXT = "".join(f"w{n} " for n in range(1, 5))

Reply = Callable[[ScriptServer, int, int, socket.socket], bool]


def answer(head: bytes, body: bytes, *, write: int = 0) -> Reply:
    """Answers every request with *head* and *body*, in one write (or *write* bytes at a time),
    and keeps the connection."""

    def reply(server: ScriptServer, conn: int, index: int, client: socket.socket) -> bool:
        data = head + body
        if not write:
            client.sendall(data)
        else:
            for start in range(0, len(data), write):
                client.sendall(data[start : start + write])
        return True

    return reply


def odd_chunks(data: bytes) -> bytes:
    """*data* in chunks of 1, 2, 3... bytes, sizes in upper-case hex with leading zeros and an
    extension: all valid framing."""
    out, start, size = [], 0, 1
    while start < len(data):
        piece = data[start : start + size]
        out.append(b"%04X;name=value\r\n%s\r\n" % (len(piece), piece))
        start += size
        size += 1
    return b"".join(out)


LAST = b"0\r\n\r\n"
BODIES = {
    "a chunk per event": b"".join(chunk(e) for e in EVENTS) + LAST,
    "one chunk for all": chunk(b"".join(EVENTS)) + LAST,
    "odd chunks": odd_chunks(b"".join(EVENTS)) + LAST,
    "trailers": b"".join(chunk(e) for e in EVENTS) + b"0\r\nX-One: 1\r\nX-Two: 2\r\n\r\n",
}


def text_of(events: list[Any]) -> str:
    return "".join(e.raw["delta"] for e in events if e.type == "response.output_text.delta")


@pytest.mark.parametrize("write", [0, 1, 7])
@pytest.mark.parametrize("name", sorted(BODIES))
def test_any_valid_chunking_gives_the_same_events_and_reuses_the_connection(
    name: str, write: int
) -> None:
    with (
        ScriptServer(answer(chunked_head(), BODIES[name], write=write)) as server,
        SSETransport(f"http://127.0.0.1:{server.port}/v1", api_key=KEY) as sse,
    ):
        for _ in range(3):
            stream = sse.create({"model": "m", "input": "hi"})
            events = list(stream)
            assert [e.type for e in events] == TYPES
            assert text_of(events) == TEXT
            assert stream.bytes_received == sum(len(e) for e in EVENTS)
        # each body was read to its end: one connection served every request
        assert [conn for conn, _ in server.requests] == [1, 1, 1]
        assert server.connections == 1


def test_events_that_arrived_together_come_from_one_read() -> None:
    """A backlog of events is one read, not one per chunk: after the first event, the others
    are returned without touching the socket (the server's connection is already closed)."""
    body = b"".join(chunk(e) for e in EVENTS) + LAST

    def reply(server: ScriptServer, conn: int, index: int, client: socket.socket) -> bool:
        client.sendall(chunked_head() + body)
        return True

    with (
        ScriptServer(reply) as server,
        SSETransport(f"http://127.0.0.1:{server.port}/v1", api_key=KEY) as sse,
    ):
        stream = sse.create({"model": "m", "input": "hi"})
        first = next(stream)
        assert first.type == "response.created"
        assert stream._body is not None
        assert stream._body.ended  # the whole body came with the first read
        assert stream._pending  # the rest is already decoded
        assert [e.type for e in stream] == TYPES[1:]


BROKEN = {
    "an invalid chunk size": chunk(EVENTS[0]) + b"zz\r\n" + EVENTS[1] + b"\r\n",
    "a negative chunk size": chunk(EVENTS[0]) + b"-5\r\nabcde\r\n",
    "a chunk size line too long": chunk(EVENTS[0]) + b"1" * 70_000,
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_framing_fails_the_stream(name: str) -> None:
    with (
        ScriptServer(answer(chunked_head(), BROKEN[name])) as server,
        SSETransport(f"http://127.0.0.1:{server.port}/v1", api_key=KEY) as sse,
    ):
        stream = sse.create({"model": "m", "input": "hi"})
        received = []
        with pytest.raises(ConnectionClosed) as info:
            received.extend(stream)
        assert "the event stream broke" in str(info.value)
        assert info.value.retryable
        assert [e.type for e in received] == ["response.created"]
        assert stream.done


@pytest.mark.parametrize("where", ["in a chunk", "between chunks", "before the last chunk"])
def test_a_body_cut_before_the_terminal_event_fails_the_stream(where: str) -> None:
    body = chunk(EVENTS[0]) + chunk(EVENTS[1])
    if where == "in a chunk":
        body += chunk(EVENTS[2])[:-10]

    def reply(server: ScriptServer, conn: int, index: int, client: socket.socket) -> bool:
        client.sendall(chunked_head() + body + (LAST if where == "before the last chunk" else b""))
        client.shutdown(socket.SHUT_RDWR)
        return False

    with (
        ScriptServer(reply) as server,
        SSETransport(f"http://127.0.0.1:{server.port}/v1", api_key=KEY) as sse,
    ):
        stream = sse.create({"model": "m", "input": "hi"})
        received = []
        with pytest.raises(ConnectionClosed) as info:
            received.extend(stream)
        assert info.value.retryable
        assert [e.type for e in received] == TYPES[:2]


def stall_mid_chunk(server: ScriptServer, conn: int, index: int, client: socket.socket) -> bool:
    """One whole event, then five bytes of the next chunk, then nothing until the server
    stops."""
    client.sendall(chunked_head() + chunk(EVENTS[0]) + chunk(EVENTS[1])[:5])
    server.stopping.wait()
    return False


def test_a_chunked_body_that_stalls_times_out_by_the_read_timeout() -> None:
    with (
        ScriptServer(stall_mid_chunk) as server,
        SSETransport(
            f"http://127.0.0.1:{server.port}/v1", api_key=KEY, timeout=(5, 0.2 * TIME_FACTOR)
        ) as sse,
    ):
        received = []
        with pytest.raises(StreamTimeout) as info:
            received.extend(sse.create({"model": "m", "input": "hi"}))
        assert info.value.phase == "idle"
        assert [e.type for e in received] == ["response.created"]


def test_close_from_another_thread_mid_chunk_ends_the_read_at_once() -> None:
    with (
        ScriptServer(stall_mid_chunk) as server,
        SSETransport(f"http://127.0.0.1:{server.port}/v1", api_key=KEY, timeout=(5, 60)) as sse,
    ):
        stream = sse.create({"model": "m", "input": "hi"})
        assert next(stream).type == "response.created"
        closer = threading.Timer(0.1, stream.close)
        closer.start()
        try:
            with pytest.raises(ConnectionClosed) as info:
                next(stream)
        finally:
            closer.join()
        assert not info.value.retryable
        assert "closed by the caller" in str(info.value)


def test_a_compressed_chunked_body_is_decoded() -> None:
    """A content encoding leaves the body to urllib3's reader, which decodes it."""
    head = chunked_head(b"Content-Encoding: gzip\r\n")
    packed = gzip.compress(b"".join(EVENTS))
    body = chunk(packed[:40]) + chunk(packed[40:]) + LAST
    with (
        ScriptServer(answer(head, body)) as server,
        SSETransport(f"http://127.0.0.1:{server.port}/v1", api_key=KEY) as sse,
    ):
        for _ in range(2):
            stream = sse.create({"model": "m", "input": "hi"})
            assert stream._body is None
            events = list(stream)
            assert [e.type for e in events] == TYPES
            assert text_of(events) == TEXT
        assert server.connections == 1


def test_a_consumer_slower_than_the_turn_budget_gets_a_timeout_not_a_broken_stream() -> None:
    """Events received together restart the turn's deadline once (at the read, as over
    WebSocket): a consumer that spends the whole budget on them finds it spent at the next
    read, which then still waits a moment for data and reports a timeout."""
    from openai_ws.transports._common import Deadline

    def reply(server: ScriptServer, conn: int, index: int, client: socket.socket) -> bool:
        client.sendall(chunked_head() + chunk(EVENTS[0]) + chunk(EVENTS[1]))
        server.stopping.wait()
        return False

    budget = 0.2 * TIME_FACTOR
    with (
        ScriptServer(reply) as server,
        SSETransport(f"http://127.0.0.1:{server.port}/v1", api_key=KEY, timeout=(5, 60)) as sse,
    ):
        stream = sse.open({"model": "m", "input": "hi"}, Deadline(budget))
        received = [next(stream)]
        assert stream._pending  # the second event came with the first one's read
        spent = threading.Event()
        spent.wait(budget * 1.5)  # the consumer's own work, longer than the budget
        received.append(next(stream))  # already received: returned without a wait
        with pytest.raises(StreamTimeout) as info:
            next(stream)
        assert [e.type for e in received] == TYPES[:2]
        assert info.value.phase == "idle"
