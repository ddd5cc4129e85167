"""A TLS link's socket is used by two threads (the reader, and whoever sends): OpenSSL allows
one at a time. ``_TLSSocket`` serialises the calls without ever holding the lock while
waiting. Real TLS over loopback, with the test authority from conftest."""

from __future__ import annotations

import errno
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from openai_ws import Client, Context, UserMessage
from openai_ws.events import Done
from openai_ws.testing import FakeResponsesServer
from openai_ws.transports._link import _TLSSocket
from tests.conftest import FAST, KEY


@pytest.fixture
def tls_pair(tls_context: ssl.SSLContext, authority: Any) -> Iterator[ssl.SSLSocket]:
    """A client TLS socket connected to a server thread that echoes what it reads."""
    listener = socket.create_server(("127.0.0.1", 0))
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)

    def echo() -> None:
        conn, _ = listener.accept()
        with tls_context.wrap_socket(conn, server_side=True) as server:
            while data := server.recv(65536):
                server.sendall(data)

    server_thread = threading.Thread(target=echo, name="tls-echo", daemon=True)
    server_thread.start()
    raw = socket.create_connection(listener.getsockname())
    client = client_context.wrap_socket(raw, server_hostname="127.0.0.1")
    try:
        yield client
    finally:
        client.close()
        server_thread.join(5)
        listener.close()
    assert not server_thread.is_alive()


def test_a_reader_and_a_writer_share_the_socket_without_corrupting_it(
    tls_pair: ssl.SSLSocket,
) -> None:
    # without the lock, OpenSSL fails this within a few hundred messages ("internal error",
    # or a read that reports the end of the stream): that looked like a lost connection
    tls = _TLSSocket(tls_pair, timeout=5)
    message, count = b"m" * 200, 3000
    received = bytearray()
    failures: list[BaseException] = []

    def read() -> None:
        try:
            while len(received) < len(message) * count:
                data = tls.recv(65536)
                if not data:
                    raise EOFError("the stream ended early")
                received.extend(data)
        except BaseException as exc:
            failures.append(exc)

    reader = threading.Thread(target=read, name="tls-reader")
    reader.start()
    for _ in range(count):
        data = message
        while data:
            data = data[tls.send(data) :]
    reader.join(10)
    assert not reader.is_alive()
    assert failures == []
    assert bytes(received) == message * count


def test_a_waiting_reader_does_not_hold_up_a_send(tls_pair: ssl.SSLSocket) -> None:
    tls = _TLSSocket(tls_pair, timeout=None)  # the reader waits as long as it takes
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(tls.recv(100)), name="tls-reader")
    reader.start()
    time.sleep(0.1)  # the reader is waiting for data now
    assert reader.is_alive()
    assert tls.send(b"ping") == 4  # it would block forever if the wait held the lock
    reader.join(5)
    assert got == [b"ping"]


def test_a_silent_socket_times_out_and_a_closed_one_says_so(tls_pair: ssl.SSLSocket) -> None:
    tls = _TLSSocket(tls_pair, timeout=0.05)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        tls.recv(100)
    assert 0.04 < time.monotonic() - started < 2
    tls_pair.close()
    with pytest.raises(OSError, match="Bad file descriptor") as closed:
        tls.recv(100)
    assert closed.value.errno == errno.EBADF  # not select's ValueError for a -1 descriptor
    with pytest.raises(OSError, match="Bad file descriptor") as closed:
        tls.send(b"late")
    assert closed.value.errno == errno.EBADF


def test_turns_over_tls_while_the_reader_pings(tls_context: ssl.SSLContext, authority: Any) -> None:
    # the whole link over TLS: keepalive every 10 ms, so the reader writes pings (through the
    # same lock) while this thread writes requests, on one socket
    with (
        FakeResponsesServer(latency=FAST, api_key=KEY, ssl_context=tls_context) as server,
        authority.cert_pem.tempfile() as ca_file,
        Client(
            api_key=KEY,
            base_url=server.http_base_url,
            sslopt={"ca_certs": ca_file},
            ping_interval=0.01,
            ping_timeout=5,
        ) as client,
    ):
        context = Context(messages=[UserMessage("hello")])
        for _ in range(40):
            stream = client.stream("m", context, session_id="tls", transport="websocket")
            events = list(stream)
            assert isinstance(events[-1], Done)
            assert stream.attempts == ["websocket: done"]
            context.messages.append(events[-1].message)
            context.messages.append(UserMessage("more"))
        assert server.stats.connections == 1
