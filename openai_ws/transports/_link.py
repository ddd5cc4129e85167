"""One WebSocket: opening it, its reader thread, its queue, its keepalive, closing it.

A :class:`Link` is one socket of a :class:`~openai_ws.WebSocketConnection`. Its reader thread
alone calls ``recv``: it parses every frame with the core's parser and puts the events on a
``queue.SimpleQueue``, in batches. Every way the reader can stop puts a final :class:`End` on the
queue, so a consumer never waits for an event that cannot come. The connection above it keeps
the state machine (which link is current, reconnection, the response cache); this module knows
nothing of responses.

Keepalive costs no thread: the socket has a timeout while pings are on, so the reader wakes
when the link is idle, sends the ping itself (websocket-client serialises writes under its
lock) and declares the link dead when nothing at all arrived within ``ping_timeout``.

A TLS socket is one OpenSSL connection object, which two threads must never use at the same
time (the reader's ``SSL_read`` and a user thread's ``SSL_write`` share its state: a read can
then report a spurious end of stream, which looked like a lost connection). So on a TLS link
the socket is non-blocking, every call into it is made under one lock that is never held
while waiting, and both sides wait for readiness with ``select`` outside the lock
(:class:`_TLSSocket`).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import queue
import select
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs
import websocket

from .._redact import redact
from ..exceptions import (
    RETRYABLE_CLOSE_CODES,
    AuthenticationError,
    ConnectError,
    ConnectionClosed,
    OpenAIWSError,
    ProtocolError,
    StreamTimeout,
    TransportError,
)
from ..protocol import ServerEvent, parse_server_event
from ._common import Deadline, ProxySettings, api_error_from_response, error_body, queue_get

__all__ = ["End", "Link", "open_link"]

logger = logging.getLogger("openai_ws")

#: Events the reader passes to the consumer in one queue item, at most (a batch holds what had
#: already arrived when the reader would otherwise block on the socket).
_BATCH: Final = 256


class _QueueOverflow(Exception):
    """The consumer fell ``max_queue`` events behind (raised to stop the reader)."""


class _FrameTooLarge(Exception):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"a server frame of {size} bytes exceeds max_frame_size ({limit})")
        self.size = size


class _PingTimeout(Exception):
    """Nothing arrived within ``ping_timeout`` after a ping."""


class _SocketReader:
    """Reads the socket in large chunks and hands websocket-client's frame parser exactly the
    bytes it asks for (it asks for a frame's header, then its payload: two system calls per
    frame without this, and two hand-overs of the GIL to the waiting consumer).

    *before_waiting* runs each time the reader is about to block on the socket: that is where
    the events parsed so far must be handed over. Not between frames: websocket-client answers
    a ping inside its frame loop and goes on reading, so a ping arriving right after a
    response's terminal frame would otherwise hold that event back until the next data frame.

    With keepalive on, the socket has a timeout: a wait that times out sends a ping once the
    link has been silent for *ping_interval*, and fails the link once a ping went unanswered
    (nothing at all arrived) for *ping_timeout*.
    """

    __slots__ = (
        "_before_waiting",
        "_buffer",
        "_ping",
        "_ping_interval",
        "_ping_timeout",
        "_position",
        "_sock",
        "received",
    )

    def __init__(
        self,
        sock: Any,
        before_waiting: Callable[[], None],
        *,
        ping: Callable[[], None] | None = None,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        early: bytes = b"",
    ) -> None:
        self._sock = sock
        self._before_waiting = before_waiting
        self._buffer = early  # what arrived right behind the handshake's answer
        self._position = 0
        self._ping = ping
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self.received = 0  # bytes read from the socket

    def recv(self, size: int) -> bytes:
        if self._position >= len(self._buffer):
            self._fill()
        start = self._position
        self._position = min(start + size, len(self._buffer))
        return self._buffer[start : self._position]

    def _fill(self) -> None:
        """Wait for the next bytes (the buffer is used up): hand over first."""
        self._before_waiting()
        data = self._read() if self._ping is None else self._recv_alive()
        if not data:
            raise websocket.WebSocketConnectionClosedException("the connection was lost")
        self.received += len(data)
        self._buffer, self._position = data, 0

    def text_frame(self, limit: int) -> bytes | None:
        """The payload of the next frame when it is a whole, final, unmasked text frame of at
        most *limit* bytes: the common case, read here without websocket-client's generic
        frame machinery. The buffer is filled first when it is used up (a server that writes
        each event on its own, as the service does, sends one frame per read). None otherwise,
        with nothing consumed (the caller then lets websocket-client read the frame, from the
        same buffer, with all its checks)."""
        if self._position >= len(self._buffer):
            self._fill()
        buffer, start = self._buffer, self._position
        available = len(buffer) - start
        if available < 2 or buffer[start] != 0x81:  # FIN, no RSV bits, opcode text
            return None
        size = buffer[start + 1]  # the mask bit is 0x80: a masked frame takes the slow path
        if size < 126:
            start += 2
        elif size == 126:
            if available < 4:
                return None
            size = int.from_bytes(buffer[start + 2 : start + 4], "big")
            start += 4
        elif size == 127:
            if available < 10:
                return None
            size = int.from_bytes(buffer[start + 2 : start + 10], "big")
            start += 10
        else:
            return None
        end = start + size
        if size > limit or end > len(buffer):
            return None
        self._position = end
        return buffer[start:end]

    def _read(self) -> bytes:
        """One read of the socket (raises TimeoutError when it stays silent for its timeout)."""
        try:
            return bytes(self._sock.recv(65536))
        except BlockingIOError:  # the kernel's receive timeout (see _set_timeout)
            raise TimeoutError("the socket was silent for its timeout") from None

    def _recv_alive(self) -> bytes:
        """``recv`` that pings a silent peer and gives up on one that stopped answering."""
        ping, interval = self._ping, self._ping_interval
        assert ping is not None
        assert interval is not None
        silent_since = time.monotonic()
        pinged_at: float | None = None
        while True:
            try:
                return self._read()
            except TimeoutError:  # socket.timeout: the link is silent
                pass
            now = time.monotonic()
            if pinged_at is not None:
                if self._ping_timeout is not None and now - pinged_at >= self._ping_timeout:
                    raise _PingTimeout
            elif now - silent_since >= interval:
                ping()
                pinged_at = now


class _TLSSocket:
    """A TLS socket shared by the reader thread and the threads that send: each call into
    OpenSSL is made under :attr:`lock` on the non-blocking socket, and the waits for
    readiness happen outside it, so neither side ever blocks the other (see the module's
    docstring). *timeout* bounds each wait (None: wait as long as it takes), as the socket's
    own timeout did.

    It stands in for the socket where websocket-client's frame reader and sender use it
    (``recv``, ``send``); everything else goes to the socket itself.
    """

    __slots__ = ("lock", "sock", "timeout")

    def __init__(self, sock: ssl.SSLSocket, timeout: float | None) -> None:
        self.sock = sock
        self.timeout = timeout
        self.lock = threading.Lock()
        sock.setblocking(False)

    def recv(self, size: int) -> bytes:
        """Read what is there (raises TimeoutError when nothing came within the timeout)."""
        while True:
            with self.lock:
                try:
                    return self.sock.recv(size)
                except ssl.SSLWantReadError:  # no whole record yet
                    readable, writable = [self.sock], []
                except ssl.SSLWantWriteError:  # OpenSSL must write first (a TLS message)
                    readable, writable = [], [self.sock]
            self._wait(readable, writable)

    def send(self, data: bytes) -> int:
        """Send some of *data*; the number of bytes sent (websocket-client sends the rest)."""
        while True:
            with self.lock:
                try:
                    return self.sock.send(data)
                except ssl.SSLWantWriteError:  # the send buffer is full
                    readable, writable = [], [self.sock]
                except ssl.SSLWantReadError:
                    readable, writable = [self.sock], []
            self._wait(readable, writable)

    def _wait(self, readable: list[Any], writable: list[Any]) -> None:
        try:
            ready = select.select(readable, writable, [], self.timeout)
        except ValueError:  # closed meanwhile (its descriptor is -1)
            raise OSError(errno.EBADF, "the socket was closed") from None
        if not ready[0] and not ready[1]:
            raise TimeoutError("the TLS socket was not ready within its timeout")


def _tls_sender(ws: Any, tls: _TLSSocket) -> Callable[[bytes], int]:
    """websocket-client's ``_send`` for a TLS link: through *tls*, under its lock."""

    def send(data: bytes) -> int:
        if ws.sock is None:
            raise websocket.WebSocketConnectionClosedException("socket is already closed.")
        return tls.send(data)

    return send


#: Whether plain links keep their timeouts in the kernel (see _set_timeout).
_KERNEL_TIMEOUTS: Final = sys.platform.startswith("linux")


def _set_timeout(sock: socket.socket, timeout: float | None) -> None:
    """Bound each read and write of a plain socket by *timeout* (None: block).

    On Linux the kernel keeps the timeout (``SO_RCVTIMEO``, ``SO_SNDTIMEO``) on a blocking
    socket: a read or a write is one system call, where a Python socket timeout polls before
    each. A read or write that times out then fails with ``EAGAIN`` (``BlockingIOError``),
    which the reader and the sender turn into the timeout it is.
    """
    if timeout is None or not _KERNEL_TIMEOUTS:
        sock.settimeout(timeout)
        return
    sock.settimeout(None)
    seconds = int(timeout)
    value = struct.pack("ll", seconds, int((timeout - seconds) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)


def _plain_sender(ws: Any, sock: socket.socket) -> Callable[[bytes], int]:
    """websocket-client's ``_send`` for a plain link: one ``write``. When the send buffer is
    full, a socket with a Python timeout (non-blocking underneath) waits in its own ``send``
    (``TimeoutError`` after the timeout); on a blocking one the kernel bounded the write (see
    :func:`_set_timeout`)."""

    def send(data: bytes) -> int:
        if ws.sock is None:
            raise websocket.WebSocketConnectionClosedException("socket is already closed.")
        try:
            return os.write(sock.fileno(), data)
        except BlockingIOError:
            if sock.gettimeout() is None:  # the kernel's send timeout ran out
                raise websocket.WebSocketTimeoutException(
                    "the socket accepted nothing within its timeout"
                ) from None
            return sock.send(data)

    return send


def _client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One final client frame of *payload* (RFC 6455 section 5.2), masked with a fresh key
    from ``os.urandom`` as the RFC requires (what websocket-client's ``ABNF.format`` makes,
    without its object)."""
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    elif size < 1 << 16:
        head = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    key = os.urandom(4)
    mask = int.from_bytes(key * (size // 4) + key[: size % 4], "little")
    return head + key + (int.from_bytes(payload, "little") ^ mask).to_bytes(size, "little")


@attrs.define
class End:
    """The last item a link's queue ever holds: why the socket ended."""

    error: OpenAIWSError
    by_us: bool = False


class Link:
    """One socket: the websocket-client object, its reader thread and its queue.

    Args:
        ws: a connected ``websocket.WebSocket``.
        number: the socket's number within its connection (for logs and thread names).
        name: the connection's label.
        max_queue: events the reader may get ahead of the consumer.
        ping_interval: seconds of silence before the reader pings (None: no keepalive).
        ping_timeout: seconds a ping may go unanswered before the link counts as dead.
        opening: the connection attempt (with its URL and options) that the reader thread
            runs first, for a socket that is not open yet (see :func:`open_link`).
    """

    def __init__(
        self,
        ws: Any,
        number: int,
        name: str,
        *,
        max_queue: int = 100_000,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        opening: tuple[_Handshake, str, dict[str, Any]] | None = None,
    ) -> None:
        self.ws = ws  # a websocket.WebSocket (the library is not fully typed)
        self.number = number
        self.name = name
        self.max_queue = max_queue
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        # the reader puts batches of events (or errors, in their place) and, last, an End
        # a SimpleQueue: the queue module's FIFO without task bookkeeping, whose put and get
        # (in C) cost about a third less per hand-over than queue.Queue's; taken only through
        # queue_get (CPython 3.10's timed get can otherwise block forever)
        self.queue: queue.SimpleQueue[list[ServerEvent | ProtocolError] | End] = queue.SimpleQueue()
        self.pending: collections.deque[ServerEvent | ProtocolError | End] = collections.deque()
        self.backlog = 0  # events put by the reader and not yet taken by the consumer
        self.backlog_lock = threading.Lock()
        self.opened_at = time.monotonic()
        self.ended = threading.Event()
        self.end: End | None = None
        self.closing = False  # we are closing it: its end is not a failure
        self.ended_at: float | None = None
        self._socket_reader: _SocketReader | None = None
        self._batch: list[ServerEvent | ProtocolError] = []  # parsed, not yet handed over
        # daemon: a program that forgets close() must still be able to exit
        self.reader = threading.Thread(
            target=self._read if opening is None else self._connect_then_read,
            args=opening or (),
            name=f"{name}-reader-{number}",
            daemon=True,
        )

    def start(self) -> None:
        """Set the open socket up for the reader and start it (a link made without
        *opening*; with it, :func:`open_link` starts the thread, which connects first)."""
        self._prepare()
        self.reader.start()

    def _prepare(self, early: bytes = b"") -> None:
        """Set the open socket up for the reader (before anything is sent); *early*: bytes
        that arrived behind the handshake's answer, the first the reader reads."""
        self.opened_at = time.monotonic()
        ws = self.ws
        if self.ping_interval is not None:  # the reader wakes on a silent socket to ping it
            tick = min(t for t in (self.ping_interval, self.ping_timeout) if t is not None)
            timeout: float | None = max(0.01, tick / 2)
        else:  # the reader blocks: waits are deadlines on the queue, never socket timeouts
            timeout = None
        sock: Any = ws.sock
        if isinstance(sock, ssl.SSLSocket):
            sock = _TLSSocket(ws.sock, timeout)
            setattr(ws, "_send", _tls_sender(ws, sock))  # noqa: B010 - patching one instance
        else:
            _set_timeout(sock, timeout)
            setattr(ws, "_send", _plain_sender(ws, sock))  # noqa: B010 - patching one instance
        self._socket_reader = _SocketReader(
            sock,
            self._hand_over,
            ping=ws.ping if timeout is not None else None,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            early=early,
        )
        ws.frame_buffer.recv = self._socket_reader.recv

    def _connect_then_read(self, attempt: _Handshake, url: str, options: dict[str, Any]) -> None:
        """The reader thread of a link that :func:`open_link` opens: the handshake first, in
        this thread (one thread per socket: at a burst of connections, every extra thread to
        start costs as much as the handshake itself), then the reading, once the caller kept
        the socket."""
        if attempt.run(url, options, self._prepare):
            self._read()

    @property
    def alive(self) -> bool:
        return not self.ended.is_set() and not self.closing

    @property
    def bytes_received(self) -> int:
        reader = self._socket_reader
        return reader.received if reader is not None else 0

    def age(self) -> float:
        return time.monotonic() - self.opened_at

    def take(self, timeout: float | None) -> ServerEvent | ProtocolError | End:
        """The next item for the consumer (one consumer at a time).

        Raises:
            queue.Empty: nothing arrived within *timeout*.
        """
        if self.pending:
            return self.pending.popleft()
        item = queue_get(self.queue, timeout)
        if isinstance(item, End):
            return item
        with self.backlog_lock:
            self.backlog -= len(item)
        self.pending.extend(item)
        return self.pending.popleft()

    def final_close(self) -> ConnectionClosed | None:
        """The server's close, when its code rules out reopening automatically."""
        end = self.end
        error = end.error if end is not None else None
        if end is None or end.by_us or not isinstance(error, ConnectionClosed):
            return None
        if error.code is None or error.code in RETRYABLE_CLOSE_CODES:
            return None
        return error

    def send(self, data: bytes) -> None:
        """Send one text frame (UTF-8 *data*); any thread.

        Raises:
            ConnectionClosed: the socket is gone (the frame may or may not have been sent).
        """
        ws = self.ws
        frame = _client_frame(data)
        try:
            with ws.lock:  # every write goes under it (pings and closes too)
                while frame:
                    frame = frame[ws._send(frame) :]
        except (websocket.WebSocketException, OSError) as exc:
            raise ConnectionClosed(
                f"sending on the WebSocket failed: {exc}", code=1006, retryable=True
            ) from exc

    # -- ending ----------------------------------------------------------------------------

    def retire(self, *, graceful: bool, reason: str = "", timeout: float = 2.0) -> None:
        """Close the socket from a user thread: close frame, one bounded wait for the reader,
        then shut it down. Returns within about *timeout* seconds in all."""
        self.closing = True
        ws = self.ws
        if graceful and not self.ended.is_set():
            with contextlib.suppress(Exception):
                ws.send_close(1000, reason.encode()[:120])
        # wake a consumer blocked on this queue now; the reader adds its own sentinel later
        self.queue.put(
            End(
                ConnectionClosed(
                    "the connection was closed by the client", code=1000, retryable=False
                ),
                by_us=True,
            )
        )
        if threading.current_thread() is not self.reader and self.reader.is_alive():
            deadline = Deadline(timeout)
            self.ended.wait(deadline.remaining())
            if self.reader.is_alive():
                _wake(ws)
                self.reader.join(deadline.remaining())
        with contextlib.suppress(Exception):
            ws.shutdown()

    def discard(self) -> None:
        """Forget the socket without any I/O: close this process's descriptor only (after a
        fork, the parent's socket stays open and untouched)."""
        self.closing = True
        sock = getattr(self.ws, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                socket.socket.close(sock)  # no TLS close_notify, no shutdown: just the fd

    # -- the reader ------------------------------------------------------------------------

    def _hand_over(self) -> None:
        """Give the consumer the events parsed so far (within the max_queue bound); runs in
        the reader thread, each time it is about to wait for the socket."""
        batch = self._batch
        if not batch:
            return
        with self.backlog_lock:
            accepted = batch[: max(0, self.max_queue - self.backlog)]
            self.backlog += len(accepted)
        if accepted:
            self.queue.put(accepted)
        overflow = len(accepted) < len(batch)
        batch.clear()  # on overflow, the rest is not delivered: the failure says why
        if overflow:
            raise _QueueOverflow

    def _read(self) -> None:
        """The reader thread: the only caller of recv on this socket."""
        ws = self.ws
        put = self.queue.put
        limit = self.max_queue
        name = self.name
        debug = logger.isEnabledFor(logging.DEBUG)
        batch = self._batch
        hand_over = self._hand_over
        reader = self._socket_reader
        assert reader is not None  # set by start()
        # the fast path for whole text frames (see _SocketReader.text_frame), with the same
        # size limit; only between messages, so websocket-client still judges fragments
        frame_limit = getattr(ws.frame_buffer, "openai_ws_limit", 0)
        text_frame = reader.text_frame
        fragments = ws.cont_frame
        text = websocket.ABNF.OPCODE_TEXT
        end: End | None = None
        try:
            while True:
                if len(batch) >= _BATCH:
                    hand_over()
                data = text_frame(frame_limit) if not fragments.recving_frames else None
                if data is not None:
                    opcode = text
                else:
                    opcode, frame = ws.recv_data_frame(False)
                    data = frame.data
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    if debug:
                        logger.debug(
                            "websocket %s: recv %s",
                            name,
                            redact(bytes(data[:500]).decode("utf-8", "replace")),
                        )
                    try:
                        batch.append(parse_server_event(data))
                    except ProtocolError as exc:
                        batch.append(exc)
                elif opcode == websocket.ABNF.OPCODE_CLOSE:
                    code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                    reason = bytes(data[2:]).decode("utf-8", "replace")
                    end = End(
                        ConnectionClosed(
                            f"the server closed the connection with code {code}"
                            + (f" ({reason})" if reason else ""),
                            code=code,
                            reason=reason,
                        ),
                        by_us=self.closing,
                    )
                    return
                else:
                    batch.append(
                        ProtocolError(
                            f"a binary frame of {len(data)} bytes: the protocol uses text "
                            "frames only"
                        )
                    )
        except _QueueOverflow:
            end = End(
                TransportError(
                    f"the consumer fell {limit} events behind the socket; the connection was "
                    "closed rather than drop events or grow without bound"
                )
            )
            with contextlib.suppress(Exception):
                ws.send_close(1008, b"client queue overflow")
        except _PingTimeout:
            end = End(
                ConnectionClosed(
                    f"the server did not answer a ping within {self.ping_timeout:g}s: the "
                    "connection is considered dead",
                    code=1006,
                ),
                by_us=self.closing,
            )
        except _FrameTooLarge as exc:
            end = End(ProtocolError(str(exc)))
            with contextlib.suppress(Exception):
                ws.send_close(1009, b"frame too large")
        except (websocket.WebSocketProtocolException, websocket.WebSocketPayloadException) as exc:
            end = End(ProtocolError(f"invalid WebSocket framing: {exc}"))
            end.error.__cause__ = exc
            with contextlib.suppress(Exception):
                ws.send_close(1002, b"protocol error")
        except (
            websocket.WebSocketConnectionClosedException,
            OSError,
            ssl.SSLError,
            websocket.WebSocketException,
        ) as exc:
            end = End(
                ConnectionClosed(
                    f"the connection was lost without a close frame ({type(exc).__name__}: {exc})",
                    code=1006,
                ),
                by_us=self.closing,
            )
            end.error.__cause__ = exc  # keep the OSError that says why
        except Exception as exc:  # the reader must always leave a sentinel
            error = TransportError(f"the WebSocket reader failed: {exc!r}")
            error.__cause__ = exc
            end = End(error)
        finally:
            if end is None:  # pragma: no cover - every path above sets it
                end = End(TransportError("the WebSocket reader stopped"))
            if batch:
                put(batch)  # what arrived before the end is delivered before it
            self.end = end
            self.ended_at = time.monotonic()
            self.ended.set()
            put(end)
            _wake(ws)
            if end.by_us:
                logger.info("websocket %s: socket %d closed", name, self.number)
            else:
                logger.warning("websocket %s: socket %d ended: %s", name, self.number, end.error)


def _wake(ws: Any) -> None:
    """Shut the socket down, which wakes a ``recv`` blocked in another thread (closing the
    descriptor does not). Not websocket-client's ``abort()``: that does nothing once
    ``send_close()`` ran, exactly when a reader waiting for a close reply needs waking."""
    sock = getattr(ws, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


# -- opening -------------------------------------------------------------------------------


def _limit_frames(ws: Any, limit: int) -> None:
    """Refuse a frame larger than *limit* as soon as its length is known."""
    frames = ws.frame_buffer
    read_length = frames.recv_length

    def checked_length() -> None:
        read_length()
        if frames.length is not None and frames.length > limit:
            raise _FrameTooLarge(frames.length, limit)

    setattr(frames, "recv_length", checked_length)  # noqa: B010 - patching one instance
    frames.openai_ws_limit = limit  # for the reader's fast path (Link._read)


class _ReadAhead:
    """The socket as websocket-client's handshake sees it: the same calls, but the answer is
    read in large chunks. The handshake reads its answer's head one byte per ``recv``: a
    system call and a hand-over of the GIL for each of its 150-odd bytes, which at a burst
    of connections (a thousand threads waiting for the GIL) cost more than all the rest of
    a connection. What is read past the head is kept for the reader (:attr:`rest`)."""

    __slots__ = ("_sock", "rest")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self.rest = b""

    def recv(self, size: int) -> bytes:
        if not self.rest:
            self.rest = bytes(self._sock.recv(max(size, 4096)))
        out, self.rest = self.rest[:size], self.rest[size:]
        return out

    def send(self, data: bytes) -> int:
        return int(self._sock.send(data))

    def gettimeout(self) -> float | None:
        timeout: float | None = self._sock.gettimeout()
        return timeout

    def fileno(self) -> int:
        return int(self._sock.fileno())


def _connect(ws: Any, url: str, options: dict[str, Any]) -> bytes:
    """``ws.connect(url, **options)`` with a read-ahead for the handshake's answer
    (:class:`_ReadAhead`); the bytes that came behind the answer. TCP, TLS and the proxy
    tunnel are websocket-client's own, and so are the request, the checks of the answer and
    the errors. A redirect is never followed: it is an error here."""
    http: Any = websocket._http  # the functions WebSocket.connect itself calls
    handshake: Any = websocket._handshake
    ws.sock_opt.timeout = options["timeout"]
    ws.sock, address = http.connect(url, ws.sock_opt, http.proxy_info(**options), None)
    try:  # from here on, abandon() can shut the socket down
        head = _ReadAhead(ws.sock)
        ws.handshake_response = handshake.handshake(head, url, *address, **options)
        status = getattr(ws.handshake_response, "status", None)
        if status in handshake.SUPPORTED_REDIRECT_STATUSES:
            raise websocket.WebSocketException(f"the handshake was redirected ({status})")
        ws.connected = True
    except BaseException:
        sock, ws.sock = ws.sock, None
        with contextlib.suppress(OSError):
            sock.close()
        raise
    return head.rest  # a server may write its first frames right behind its answer


class _Handshake:
    """One connection attempt, run in the link's reader thread so that the caller can give up
    on it at once (a close() from another thread, the turn's deadline): TCP, TLS, the proxy
    and the upgrade all block in websocket-client, where nothing else can interrupt them."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.lock = threading.Lock()
        self.settled = threading.Event()
        self.finished = False
        self.abandoned = False
        self.error: BaseException | None = None

    def run(self, url: str, options: dict[str, Any], ready: Callable[[bytes], None]) -> bool:
        """Connect, then *ready(early)* (the socket's set-up for reading, with the bytes that
        came behind the handshake's answer). True when the socket is open and the caller is
        still waiting for it."""
        try:
            ready(_connect(self.ws, url, options))
        except BaseException as exc:  # handed to the caller
            self.error = exc
            with contextlib.suppress(Exception):
                self.ws.shutdown()  # a no-op unless ready() failed on an open socket
        with self.lock:
            self.finished = True
            abandoned = self.abandoned
        self.settled.set()
        if abandoned:  # nobody will use this socket
            _wake(self.ws)
            with contextlib.suppress(Exception):
                self.ws.shutdown()
            return False
        return self.error is None

    def abandon(self) -> bool:
        """Give up on the attempt; False when it had already finished."""
        with self.lock:
            if self.finished:
                return False
            self.abandoned = True
        sock = getattr(self.ws, "sock", None)  # set once TCP (and TLS) are up
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        return True


def open_link(
    url: str,
    *,
    headers: Mapping[str, str],
    connect_timeout: float,
    proxy: ProxySettings,
    sslopt: Mapping[str, Any],
    max_frame_size: int,
    deadline: Deadline,
    closed: Deadline,
    number: int,
    name: str,
    max_queue: int,
    ping_interval: float | None,
    ping_timeout: float | None,
) -> Link:
    """Open one socket, in the thread that then reads it (running once this returns).

    The wait is bounded by *connect_timeout* and by *deadline*; cancelling *deadline* or
    *closed* (the connection's close()) returns at once (the attempt is left to finish in its
    thread, and its socket is closed).

    Raises:
        ConnectError: the connection or the handshake failed (``status_code`` set when the
            server answered).
        AuthenticationError: the handshake was refused with 401 (or 403): the key is wrong.
        StreamTimeout: the turn's deadline ran out first (``phase="connect"``).
        ConnectionClosed: *deadline* or *closed* was cancelled.
    """
    limit = deadline.limit(connect_timeout)
    seconds = connect_timeout if limit is None else limit
    options: dict[str, Any] = {
        "header": [f"{k}: {v}" for k, v in headers.items()],
        "timeout": max(seconds, 0.001),
        "redirect_limit": 0,  # never carry the Authorization header to a redirect target
        "suppress_origin": True,
    }
    if proxy.enabled:
        options.update(
            http_proxy_host=proxy.host,
            http_proxy_port=proxy.port,
            http_proxy_auth=proxy.auth,
            proxy_type="http",
        )
    else:
        # websocket-client reads the proxy environment itself unless told where to go:
        # a proxy entry that every host bypasses keeps it direct, as we decided.
        options.update(http_proxy_host="direct.invalid", http_proxy_port=1, http_no_proxy=["*"])
    ws: Any = websocket.WebSocket(
        enable_multithread=True, skip_utf8_validation=True, sslopt=dict(sslopt) or None
    )
    _limit_frames(ws, max_frame_size)
    attempt = _Handshake(ws)
    link = Link(
        ws,
        number,
        name,
        max_queue=max_queue,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        opening=(attempt, url, options),
    )
    undo = [deadline.on_cancel(attempt.settled.set), closed.on_cancel(attempt.settled.set)]
    try:
        if seconds <= 0:
            raise _expired(deadline)
        link.reader.start()
        attempt.settled.wait(seconds + 0.5)  # websocket-client's own timeout ends it first
    finally:
        for unregister in undo:
            unregister()
    if attempt.abandon():
        if closed.cancelled:
            raise _closed_meanwhile()
        if deadline.cancelled:
            raise ConnectionClosed(
                "the connection attempt was cancelled", code=1000, retryable=False
            )
        if limit is not None and limit < connect_timeout:
            raise _expired(deadline)
        raise ConnectError(
            f"could not connect to {url}: timed out after {connect_timeout:g}s", retryable=True
        )
    if attempt.error is not None:
        raise _connect_error(url, ws, attempt.error, connect_timeout) from attempt.error
    if deadline.cancelled or closed.cancelled:
        link.retire(graceful=False, timeout=0)
        if closed.cancelled:
            raise _closed_meanwhile()
        raise ConnectionClosed("the connection attempt was cancelled", code=1000, retryable=False)
    return link


def _closed_meanwhile() -> ConnectionClosed:
    return ConnectionClosed(
        "this connection was closed by close() while it was connecting",
        code=1000,
        retryable=False,
    )


def _expired(deadline: Deadline) -> StreamTimeout:
    return StreamTimeout(
        f"the turn's timeout ({deadline.seconds:g}s) ran out while connecting",
        timeout=deadline.seconds,
        phase="connect",
    )


def _connect_error(url: str, ws: Any, exc: BaseException, connect_timeout: float) -> Exception:
    """The exception for a failed connection attempt."""
    if isinstance(exc, websocket.WebSocketBadStatusException):
        return refused(url, exc.status_code, exc.resp_headers, exc.resp_body)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConnectError(
            f"TLS certificate verification failed for {url}: {exc.verify_message}",
            retryable=False,
        )
    if isinstance(exc, websocket.WebSocketException):
        response = getattr(ws, "handshake_response", None)
        status = getattr(response, "status", None)
        if status is not None and 300 <= status < 400:
            location = response.headers.get("location", "?") if response else "?"
            return ConnectError(
                f"the WebSocket handshake at {url} was redirected ({status} to "
                f"{location}); handshake redirects are not followed",
                status_code=status,
                headers=response.headers if response else None,
                retryable=False,
            )
    if isinstance(exc, (TimeoutError, websocket.WebSocketTimeoutException)):
        text = f"timed out after {connect_timeout:g}s"
    elif isinstance(exc, (OSError, ValueError, websocket.WebSocketException)):
        text = str(exc) or type(exc).__name__
    else:
        return exc if isinstance(exc, Exception) else ConnectError(repr(exc))
    return ConnectError(f"could not connect to {url}: {text}", retryable=True)


def refused(url: str, status: int, headers: Any, body: Any) -> OpenAIWSError:
    """The error for a handshake the server answered with an error status: the typed
    :class:`~openai_ws.exceptions.APIError` (with the server's error body) for 401 and 403,
    a :class:`~openai_ws.exceptions.ConnectError` otherwise."""
    raw = body if isinstance(body, bytes) else (body or "").encode("utf-8", "replace")
    header_map = dict(headers or {})
    if status in (401, 403):
        error = api_error_from_response(
            status, header_map, raw, fallback=f"the WebSocket handshake at {url} was refused"
        )
        if isinstance(error, AuthenticationError):
            return error
        return AuthenticationError(
            error.message,
            code=error.code,
            type=error.type,
            param=error.param,
            status_code=status,
            request_id=error.request_id,
            headers=header_map,
        )
    fields, detail = error_body(raw)
    if detail is None and not fields:
        detail = raw.decode("utf-8", "replace").strip()[:200]
    message = f"the WebSocket handshake at {url} was refused with HTTP {status}"
    if status == 426:
        message += " (no WebSocket mode here)"
    if detail:
        message += f": {detail}"
    return ConnectError(
        message,
        status_code=status,
        headers=header_map,
        retryable=status >= 500 or status in (408, 429),
    )
