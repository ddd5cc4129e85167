"""The opening handshake as the reader thread runs it: the answer's head is read in large
chunks (websocket-client reads it a byte per system call), and bytes that come right behind
the answer reach the reader. Real sockets on loopback."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from typing import Any

import websocket

from openai_ws.transports import WebSocketConnection
from openai_ws.transports._link import _ReadAhead
from tests.conftest import KEY, wait_for
from tests.transports.servers import _Listener, upgrade_answer
from tests.transports.test_frame_fast_path import event, frame
from tests.transports.test_link_send import _read_frame


class CountingSocket:
    """A socket whose reads are counted."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reads = 0

    def recv(self, size: int) -> bytes:
        self.reads += 1
        return self.sock.recv(size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def test_the_answer_is_read_in_one_read_and_what_follows_it_is_kept() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(5)
        head = (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: abc\r\nX-Request-Id: req_123\r\n\r\n"
        )
        theirs.sendall(head + b"\x89\x02hi")  # a ping right behind the answer
        counted = CountingSocket(ours)
        reader = _ReadAhead(counted)
        http: Any = websocket._http  # the function websocket-client's handshake reads with
        status, headers, _ = http.read_headers(reader)
        assert status == 101
        assert headers["x-request-id"] == "req_123"
        assert counted.reads == 1  # websocket-client alone makes one read per byte: 120 here
        assert reader.rest == b"\x89\x02hi"


def test_the_read_ahead_passes_on_an_ended_socket_and_the_timeout() -> None:
    ours, theirs = socket.socketpair()
    with ours:
        ours.settimeout(0.25)
        reader = _ReadAhead(ours)
        assert reader.gettimeout() == 0.25
        assert reader.fileno() == ours.fileno()
        assert reader.send(b"x") == 1
        assert theirs.recv(1) == b"x"
        theirs.sendall(b"ab")
        assert reader.recv(1) == b"a"
        assert reader.recv(5) == b"b"
        theirs.close()
        assert reader.recv(1) == b""  # the end of the stream, as the socket says it


class EarlyPingServer(_Listener):
    """Writes the upgrade's answer and a ping in one write, then answers each request with a
    short response; records the opcodes and payloads of the client's frames."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[tuple[int, bytes]] = []
        self.done = threading.Event()

    def handle(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError, AssertionError):
            client.sendall(upgrade_answer(self.read_head(client)) + frame(9, b"early"))
            number = 0
            while True:
                opcode, payload = _read_frame(client)
                self.frames.append((opcode, payload))
                if opcode == 1:
                    rid = f"resp_{number}"
                    number += 1
                    created = {"id": rid, "status": "in_progress"}
                    done = {"id": rid, "status": "completed", "output": []}
                    client.sendall(
                        frame(1, event("response.created", response=created))
                        + frame(1, event("response.completed", response=done))
                    )
                elif opcode == 8:
                    return


def test_a_frame_right_behind_the_answer_reaches_the_reader() -> None:
    server = EarlyPingServer()
    with (
        server,
        WebSocketConnection(f"ws://127.0.0.1:{server.port}/v1/responses", api_key=KEY) as conn,
    ):
        events = list(conn.create({"model": "m", "input": "hi"}, timeout=10))
        assert [e.type for e in events] == ["response.created", "response.completed"]
        assert conn.previous_response_id == "resp_0"
        assert wait_for(lambda: (10, b"early") in server.frames)  # the ping was answered
        request = next(json.loads(p) for op, p in server.frames if op == 1)
        assert request["type"] == "response.create"


class HeldUpgradeServer(EarlyPingServer):
    """Answers the upgrade only once :attr:`release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def read_head(self, client: socket.socket) -> bytes:  # type: ignore[override]
        head = super().read_head(client)
        self.release.wait(10)
        return head


def test_the_handshake_runs_in_the_thread_that_then_reads_the_socket() -> None:
    server = HeldUpgradeServer()
    with server:
        before = set(threading.enumerate())
        conn = WebSocketConnection(
            f"ws://127.0.0.1:{server.port}/v1/responses", api_key=KEY, name="held"
        )
        opener = threading.Thread(target=conn.connect)
        opener.start()
        try:
            assert wait_for(lambda: server.accepted)
            during = [t.name for t in set(threading.enumerate()) - before if t is not opener]
            assert [n for n in during if n.startswith("held")] == ["held-reader-1"]
        finally:
            server.release.set()
            opener.join(10)
        with conn:
            events = list(conn.create({"model": "m", "input": "hi"}, timeout=10))
            assert events[-1].type == "response.completed"
            readers = [t for t in threading.enumerate() if t.name.startswith("held")]
            assert [t.name for t in readers] == ["held-reader-1"]  # the same thread reads
