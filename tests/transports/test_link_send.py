"""What a link writes: its client frames (RFC 6455 section 5.2, masked) and the plain-socket
sender, which writes at once and waits for the socket only when its send buffer is full.
Real sockets on loopback."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import websocket

from openai_ws.transports import _link as link_module
from openai_ws.transports._link import Link, _client_frame


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 126, 127, 65535, 65536, 70001])
def test_a_frame_is_what_websocket_client_makes_with_the_same_key(size: int) -> None:
    payload = os.urandom(size)
    ours = _client_frame(payload)
    key_at = 2 if size < 126 else 4 if size < 1 << 16 else 10
    theirs = websocket.ABNF(1, 0, 0, 0, websocket.ABNF.OPCODE_TEXT, 1, payload)
    theirs.get_mask_key = lambda _: ours[key_at : key_at + 4]
    assert ours == theirs.format()
    assert _client_frame(payload)[key_at : key_at + 4] != ours[key_at : key_at + 4] or size == 0


def _read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One masked client frame from *sock*: (opcode, unmasked payload)."""

    def exactly(count: int) -> bytes:
        data = bytearray()
        while len(data) < count:
            chunk = sock.recv(min(count - len(data), 8192))
            assert chunk, "the connection ended inside a frame"
            data += chunk
            time.sleep(0.0005)  # a slow reader: the sender's buffer fills up
        return bytes(data)

    first, second = exactly(2)
    assert first & 0x80  # final
    assert second & 0x80  # masked
    size = second & 0x7F
    if size == 126:
        size = int.from_bytes(exactly(2), "big")
    elif size == 127:
        size = int.from_bytes(exactly(8), "big")
    key = exactly(4)
    masked = exactly(size)
    return first & 0x0F, bytes(b ^ key[i % 4] for i, b in enumerate(masked))


@pytest.fixture(
    params=[(0.5, True), (0.5, False), (None, True)],
    ids=["pinging", "pinging-python-timeout", "blocking"],
)
def link(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Link, socket.socket]]:
    """A started link over a connected pair with tiny buffers, and the peer's socket. With a
    ping interval the socket has a timeout: the kernel's (on Linux), or Python's (elsewhere,
    and here when the kernel's is turned off)."""
    ping_interval, kernel = request.param
    monkeypatch.setattr(link_module, "_KERNEL_TIMEOUTS", kernel and link_module._KERNEL_TIMEOUTS)
    ours, peer = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ws = websocket.WebSocket(skip_utf8_validation=True)
    ws.sock, ws.connected = ours, True
    link = Link(ws, 1, "test", ping_interval=ping_interval, ping_timeout=30)
    link.start()
    try:
        yield link, peer
    finally:
        link.retire(graceful=False, timeout=1)
        peer.close()
        link.reader.join(5)
    assert not link.reader.is_alive()


def test_a_message_larger_than_the_send_buffer_arrives_whole(
    link: tuple[Link, socket.socket],
) -> None:
    sender, peer = link
    payload = os.urandom(300_000)
    received: list[tuple[int, bytes]] = []
    reader = threading.Thread(target=lambda: received.append(_read_frame(peer)))
    reader.start()
    sender.send(payload)  # many partial writes, and waits while the buffer is full
    reader.join(30)
    assert received == [(websocket.ABNF.OPCODE_TEXT, payload)]


def test_sends_from_several_threads_never_interleave(link: tuple[Link, socket.socket]) -> None:
    sender, peer = link
    payloads = [bytes([n]) * 20_000 for n in range(8)]
    received: list[tuple[int, bytes]] = []

    def read_all() -> None:
        for _ in payloads:
            received.append(_read_frame(peer))

    reader = threading.Thread(target=read_all)
    reader.start()
    threads = [threading.Thread(target=sender.send, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    reader.join(30)
    assert sorted(payload for _, payload in received) == sorted(payloads)


def _pair(ping_interval: float | None, ping_timeout: float | None) -> tuple[Link, socket.socket]:
    ours, peer = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ws = websocket.WebSocket(skip_utf8_validation=True)
    ws.sock, ws.connected = ours, True
    link = Link(ws, 1, "test", ping_interval=ping_interval, ping_timeout=ping_timeout)
    link.start()
    return link, peer


def test_a_peer_that_never_answers_a_ping_ends_the_link() -> None:
    """The reader's read times out on a silent socket, pings, and gives up after ping_timeout
    (the timeout is the kernel's on Linux: a read that times out is an EAGAIN)."""
    link, peer = _pair(0.1, 0.3)
    try:
        started = time.monotonic()
        assert link.ended.wait(5)
        assert time.monotonic() - started < 3
        end = link.take(1)
        assert "did not answer a ping" in str(getattr(end, "error", ""))
        opcode, _ = _read_frame(peer)  # the ping went out before the link gave up
        assert opcode == websocket.ABNF.OPCODE_PING
    finally:
        link.retire(graceful=False, timeout=1)
        peer.close()
        link.reader.join(5)
    assert not link.reader.is_alive()


def test_a_send_to_a_peer_that_stopped_reading_fails_instead_of_hanging() -> None:
    """A full send buffer that never drains: the send fails within the socket's timeout."""
    from openai_ws.exceptions import ConnectionClosed

    link, peer = _pair(0.2, 30)
    try:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed, match="sending on the WebSocket failed"):
            link.send(b"x" * 5_000_000)  # far more than both buffers hold
        assert time.monotonic() - started < 10
    finally:
        link.retire(graceful=False, timeout=1)
        peer.close()
        link.reader.join(5)
    assert not link.reader.is_alive()
