"""Tiny loopback servers for the cases the emulator does not cover: an HTTP CONNECT proxy, a
server that accepts and never answers, one that answers every request with fixed bytes, and
WebSocket servers whose bytes (or silence) are exactly scripted."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import threading
from collections.abc import Callable, Iterator
from types import TracebackType


def upgrade_answer(head: bytes) -> bytes:
    """The 101 answer to the WebSocket upgrade request *head* (its accept key computed)."""
    key = next(
        line.split(":", 1)[1].strip()
        for line in head.decode("latin-1").split("\r\n")
        if line.lower().startswith("sec-websocket-key:")
    )
    digest = hashlib.sha1(
        (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode(), usedforsecurity=False
    ).digest()
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + base64.b64encode(digest) + b"\r\n\r\n"
    )


class _Listener:
    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._clients: list[socket.socket] = []
        self._stop = threading.Event()
        self.received: list[bytes] = []
        self._accept = threading.Thread(target=self._loop, name=f"{type(self).__name__}-accept")

    def __enter__(self) -> _Listener:
        self._accept.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for client in self._clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()
        self._accept.join(5)
        for thread in self._threads:
            thread.join(5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self._clients.append(client)
            thread = threading.Thread(
                target=self.handle, args=(client,), name=f"{type(self).__name__}-conn"
            )
            self._threads.append(thread)
            thread.start()

    @property
    def accepted(self) -> int:
        """How many connections were accepted so far."""
        return len(self._clients)

    def handle(self, client: socket.socket) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    @staticmethod
    def read_head(client: socket.socket) -> bytes:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                break
            head += chunk
        return head


class SilentServer(_Listener):
    """Accepts connections, reads, and never answers."""

    def handle(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while client.recv(4096):
                pass


class FixedResponseServer(_Listener):
    """Answers every request with *response* and closes."""

    def __init__(self, response: bytes) -> None:
        super().__init__()
        self.response = response

    def handle(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            self.received.append(self.read_head(client))
            client.sendall(self.response)
            client.shutdown(socket.SHUT_RDWR)


class ConnectProxy(_Listener):
    """An HTTP CONNECT proxy that records each CONNECT request head and relays bytes."""

    def handle(self, client: socket.socket) -> None:
        head = self.read_head(client)
        self.received.append(head)
        target = head.split(b" ")[1].decode()
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=5)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            client.close()
            return
        self._clients.append(upstream)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        back = threading.Thread(
            target=self._pipe, args=(upstream, client), name="ConnectProxy-pipe"
        )
        self._threads.append(back)
        back.start()
        self._pipe(client, upstream)

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def env(**values: str | None) -> Iterator[None]:
    """Set (or, with None, remove) environment variables for the block."""
    import os

    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class HoldingServer(_Listener):
    """Answers with *response*, then keeps the connection open without a word more."""

    def __init__(self, response: bytes) -> None:
        super().__init__()
        self.response = response

    def handle(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            self.read_head(client)
            client.sendall(self.response)
            while client.recv(4096):
                pass


class FrameScriptServer(_Listener):
    """A WebSocket server whose every reply is exact bytes: after the handshake (done by the
    websockets library's sans-I/O protocol), each message received is answered with the frames
    ``reply(number)`` returns, written in one ``sendall``. For the cases where the timing of
    bytes on the wire matters."""

    def __init__(self, reply: Callable[[int], list[tuple[int, bytes]]]) -> None:
        super().__init__()
        self.reply = reply

    def handle(self, client: socket.socket) -> None:
        from websockets.frames import Frame, Opcode
        from websockets.http11 import Request
        from websockets.server import ServerProtocol

        protocol = ServerProtocol()
        with contextlib.suppress(OSError):
            answered = 0
            handshaken = False
            while data := client.recv(65536):
                protocol.receive_data(data)
                for event in protocol.events_received():
                    if isinstance(event, Request) and not handshaken:
                        protocol.send_response(protocol.accept(event))
                        handshaken = True
                    elif isinstance(event, Frame) and event.opcode == Opcode.TEXT:
                        frames = self.reply(answered)
                        answered += 1
                        client.sendall(
                            b"".join(
                                Frame(Opcode(op), body).serialize(mask=False, extensions=[])
                                for op, body in frames
                            )
                        )
                for chunk in protocol.data_to_send():
                    client.sendall(chunk)


class MuteWebSocketServer(_Listener):
    """Upgrades every connection to WebSocket, then never sends another byte: no events, no
    pongs. With *created*, the first request gets a ``response.created`` frame first (then the
    silence of a connection that died without a FIN). What it receives after the upgrade is
    read and dropped."""

    def __init__(self, *, created: bool = False) -> None:
        super().__init__()
        self.created = created
        self.pings = 0

    def handle(self, client: socket.socket) -> None:
        from websockets.frames import Frame, Opcode
        from websockets.http11 import Request
        from websockets.server import ServerProtocol

        protocol = ServerProtocol()
        with contextlib.suppress(OSError):
            handshaken = False
            answered = False
            while data := client.recv(65536):
                protocol.receive_data(data)
                for event in protocol.events_received():
                    if isinstance(event, Request) and not handshaken:
                        protocol.send_response(protocol.accept(event))
                        handshaken = True
                        for chunk in protocol.data_to_send():
                            client.sendall(chunk)
                    elif isinstance(event, Frame) and event.opcode == Opcode.PING:
                        self.pings += 1
                    elif (
                        isinstance(event, Frame)
                        and event.opcode == Opcode.TEXT
                        and self.created
                        and not answered
                    ):
                        answered = True
                        body = b'{"type":"response.created","response":{"id":"resp_mute"}}'
                        client.sendall(Frame(Opcode.TEXT, body).serialize(mask=False))
                protocol.data_to_send()  # pongs and the like are dropped: the peer is mute
