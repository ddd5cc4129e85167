"""SSETransport against a raw loopback server, where the framing and timing of the body's bytes
matter: events reach the caller as they arrive whatever the framing, and the terminal event is
returned at once whatever the body does afterwards (with the connection reused when it ends)."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
import requests.adapters

from openai_ws.protocol import ServerEvent
from openai_ws.transports import SSETransport
from tests.conftest import KEY, TIME_FACTOR, wait_for
from tests.transports.servers import _Listener

#: How long the server waits for the client to confirm an event before sending the next anyway.
PATIENCE = 3.0 * TIME_FACTOR


def sse_event(kind: str, number: int, **fields: Any) -> bytes:
    data = {"type": kind, "sequence_number": number, **fields}
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


def script(count: int) -> list[bytes]:
    """``response.created``, *count* - 2 text deltas, ``response.completed``."""
    response = {"id": "resp_1", "object": "response", "status": "in_progress", "output": []}
    events = [sse_event("response.created", 0, response=response)]
    for n in range(1, count - 1):
        events.append(
            sse_event(
                "response.output_text.delta",
                n,
                item_id="msg_1",
                output_index=0,
                content_index=0,
                delta=f"w{n} ",
            )
        )
    done = dict(response, status="completed")
    events.append(sse_event("response.completed", count - 1, response=done))
    return events


class ScriptServer(_Listener):
    """An HTTP/1.1 server whose every request is answered by ``reply(conn, index, client)``
    (*conn*: the connection's number from 1, *index*: the request's number on it). Reads
    requests with ``Content-Length`` bodies, keep-alive, until the client closes."""

    def __init__(self, reply: Callable[[ScriptServer, int, int, socket.socket], bool]) -> None:
        super().__init__()
        self.reply = reply
        self.connections = 0
        self.requests: list[tuple[int, bytes]] = []  # (connection, head)
        self.closed_by_client: list[int] = []
        self.sent_terminal = 0.0  # when a reply's terminal event was written
        self.lock = threading.Lock()

    @property
    def stopping(self) -> threading.Event:
        return self._stop

    def handle(self, client: socket.socket) -> None:
        with self.lock:
            self.connections += 1
            number = self.connections
        buffer = b""
        index = 0
        with contextlib.suppress(OSError):
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = client.recv(65536)
                    if not data:
                        self.closed_by_client.append(number)
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    data = client.recv(65536)
                    if not data:
                        return
                    buffer += data
                buffer = buffer[length:]
                with self.lock:
                    self.requests.append((number, head))
                if not self.reply(self, number, index, client):
                    return  # the reply closed the connection, or left it hanging
                index += 1


def chunked_head(extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Transfer-Encoding: chunked\r\n" + extra + b"\r\n"
    )


CLOSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@pytest.fixture
def body() -> dict[str, Any]:
    return {"model": "m", "input": "hi"}


# -- events as they arrive, whatever the framing ------------------------------------------------


class Paced:
    """Sends each event, then waits until the client confirms it got it (or PATIENCE ran out,
    which the test then reports): an event that the client sees only later than the next one
    is sent would show as a timed-out confirmation."""

    def __init__(self, framing: str, count: int = 6) -> None:
        self.framing = framing
        self.events = script(count)
        self.confirmed = [threading.Event() for _ in self.events]
        self.late: list[int] = []  # events the client did not confirm in time

    def __call__(self, server: ScriptServer, conn: int, index: int, client: socket.socket) -> bool:
        framing = self.framing
        if framing == "length":
            total = sum(len(e) for e in self.events)
            client.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Content-Length: %d\r\n\r\n" % total
            )
        else:
            client.sendall(CLOSE_HEAD if framing in ("close", "close-bytes") else chunked_head())
        for number, event in enumerate(self.events):
            if framing == "chunked":
                client.sendall(chunk(event))
            elif framing == "tiny-chunks":
                for i in range(len(event)):
                    client.sendall(chunk(event[i : i + 1]))
            elif framing == "close-bytes":
                for i in range(len(event)):
                    client.sendall(event[i : i + 1])
            else:
                client.sendall(event)
            if not self.confirmed[number].wait(PATIENCE):
                self.late.append(number)
        if framing in ("chunked", "tiny-chunks"):
            client.sendall(b"0\r\n\r\n")
            return True
        client.shutdown(socket.SHUT_RDWR)
        return False


@pytest.mark.parametrize("framing", ["close", "close-bytes", "chunked", "tiny-chunks", "length"])
def test_each_event_reaches_the_caller_before_the_next_is_sent(
    framing: str, body: dict[str, Any]
) -> None:
    paced = Paced(framing)
    received: list[ServerEvent] = []
    with (
        ScriptServer(paced) as server,
        SSETransport(f"http://127.0.0.1:{server.port}/v1", api_key=KEY) as sse,
    ):
        for event in sse.create(body):
            received.append(event)
            paced.confirmed[len(received) - 1].set()
    assert [e.type for e in received] == [
        "response.created",
        *["response.output_text.delta"] * 4,
        "response.completed",
    ]
    assert paced.late == [], f"events held back until later ones were sent: {paced.late}"


# -- the terminal event at once, whatever the body does after it ---------------------------------


def terminal_then(after: str) -> Callable[[ScriptServer, int, int, socket.socket], bool]:
    """Answers with the script, then: ``end`` (the last chunk in the same write as the terminal
    event), ``linger`` (nothing more, the connection left open), ``cut`` (the connection
    dropped without the last chunk), ``close-linger`` (a close-delimited body left open)."""

    def reply(server: ScriptServer, conn: int, index: int, client: socket.socket) -> bool:
        events = script(4)
        server.sent_terminal = time.monotonic()  # just before: the client may be quicker
        if after == "close-linger":
            client.sendall(CLOSE_HEAD + b"".join(events))
        else:
            body = b"".join(chunk(e) for e in events)
            if after == "end":
                body += b"0\r\n\r\n"
            client.sendall(chunked_head() + body)
        if after == "end":
            return True
        if after == "cut":
            client.shutdown(socket.SHUT_RDWR)
            return False
        # lingering: hold the connection until the client closes it or the server stops
        with contextlib.suppress(OSError):
            while client.recv(4096):
                pass
        server.closed_by_client.append(conn)
        return False

    return reply


@pytest.mark.parametrize("after", ["linger", "cut", "close-linger"])
def test_terminal_event_at_once_whatever_the_body_does_next(
    after: str, body: dict[str, Any]
) -> None:
    with (
        ScriptServer(terminal_then(after)) as server,
        SSETransport(f"http://127.0.0.1:{server.port}/v1", api_key=KEY) as sse,
    ):
        for _ in range(2):
            stream = sse.create(body)
            received = []
            for event in stream:
                received.append(event)
                if event.is_terminal:
                    # returned at once, not after a wait for the body's end (the old drain
                    # waited a whole second)
                    assert time.monotonic() - server.sent_terminal < 0.5 * TIME_FACTOR
            assert [e.type for e in received][-1] == "response.completed"
            assert stream.done
        # a body that did not end cannot be reused: each request had its own connection, and
        # the client closed the one it left
        assert server.connections == 2
        if after != "cut":
            assert wait_for(lambda: sorted(server.closed_by_client) == [1, 2])


def test_a_body_that_ends_with_the_terminal_event_leaves_its_connection_for_reuse(
    body: dict[str, Any],
) -> None:
    with (
        ScriptServer(terminal_then("end")) as server,
        SSETransport(f"http://127.0.0.1:{server.port}/v1", api_key=KEY) as sse,
    ):
        for _ in range(3):
            assert list(sse.create(body))[-1].type == "response.completed"
        assert [conn for conn, _ in server.requests] == [1, 1, 1]
        assert server.connections == 1


def test_close_after_the_terminal_event_also_returns_the_connection(
    body: dict[str, Any],
) -> None:
    """The turn closes the stream right after the terminal event, without asking for more."""
    with (
        ScriptServer(terminal_then("end")) as server,
        SSETransport(f"http://127.0.0.1:{server.port}/v1", api_key=KEY) as sse,
    ):
        for _ in range(2):
            stream = sse.create(body)
            while not next(stream).is_terminal:
                pass
            stream.close()
        assert server.connections == 1


def test_each_read_of_the_body_is_bounded(body: dict[str, Any]) -> None:
    """A close-delimited body that stalls mid-stream times out by the read timeout."""
    from openai_ws.exceptions import StreamTimeout

    def reply(server: ScriptServer, conn: int, index: int, client: socket.socket) -> bool:
        client.sendall(CLOSE_HEAD + script(4)[0])
        server.stopping.wait()
        return False

    with (
        ScriptServer(reply) as server,
        SSETransport(
            f"http://127.0.0.1:{server.port}/v1", api_key=KEY, timeout=(5, 0.2 * TIME_FACTOR)
        ) as sse,
    ):
        received = []
        with pytest.raises(StreamTimeout) as info:
            received.extend(sse.create(body))
        assert info.value.phase == "idle"
        assert [e.type for e in received] == ["response.created"]


# -- a response that is not urllib3's ---------------------------------------------------------


class BytesAdapter(requests.adapters.BaseAdapter):
    """A caller's transport adapter (as test libraries mount) whose responses' ``raw`` is a
    plain file object, not urllib3's response."""

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = "text/event-stream"
        response.raw = io.BytesIO(self.body)
        response.request = request
        response.url = request.url or ""
        return response

    def close(self) -> None:
        pass


def test_a_response_from_another_adapter_is_read_with_requests_reader(
    body: dict[str, Any],
) -> None:
    session = requests.Session()
    session.mount("http://adapter.invalid/", BytesAdapter(b"".join(script(4))))
    with SSETransport("http://adapter.invalid/v1", api_key=KEY, session=session) as sse:
        stream = sse.create(body)
        types = [e.type for e in stream]
        stream.close()
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    session.close()
