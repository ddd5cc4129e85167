"""WebSocket mode: one socket, one reader thread, one queue.

:class:`WebSocketConnection` wraps ``websocket-client``. For each socket it opens, one reader
thread alone calls ``recv``; it parses every frame with the core's parser and puts the event on
a ``queue.Queue``. User threads only ``send`` (under the library's lock) and ``get`` from the
queue, with deadlines. Every way the reader can stop puts a final sentinel on the queue, so a
consumer never waits for an event that cannot come.

One response is in flight per socket at a time (the server processes ``response.create``
sequentially): a second concurrent :meth:`~WebSocketConnection.create` on the same connection
raises :class:`~openai_ws.exceptions.ConcurrencyError`. :class:`~openai_ws.Client` serialises
the turns of a session for you.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import json
import logging
import queue
import ssl
import struct
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

import attrs
import websocket

from .._redact import redact
from ..exceptions import (
    ConcurrencyError,
    ConfigurationError,
    ConnectError,
    ConnectionClosed,
    OpenAIWSError,
    ProtocolError,
    StreamTimeout,
    TransportError,
)
from ..protocol import ErrorEvent, ResponseEvent, ServerEvent, parse_server_event
from ._common import Deadline, auth_headers, resolve_proxy

__all__ = [
    "DEFAULT_BACKOFF",
    "InsecureTransportWarning",
    "ResponseEvents",
    "WebSocketConnection",
    "WebSocketState",
]

logger = logging.getLogger("openai_ws")

#: Seconds to wait before each reconnection attempt after a drop.
DEFAULT_BACKOFF: Final = (1.0, 2.0, 4.0, 8.0, 16.0)
#: Close codes after which the connection reconnects by itself (PROTOCOL.md).
RECONNECT_CODES: Final = frozenset({1001, 1005, 1006, 1011, 1012, 1013, 1015})
_FINISHED_MEMORY: Final = 32


class InsecureTransportWarning(UserWarning):
    """TLS certificate or host name verification was turned off through ``sslopt``."""


class WebSocketState(str, enum.Enum):
    """Where a :class:`WebSocketConnection` stands."""

    NEW = "new"  #: never connected
    OPEN = "open"  #: a socket is open
    DISCONNECTED = "disconnected"  #: the socket ended; the next use reconnects if it may
    CLOSED = "closed"  #: :meth:`WebSocketConnection.close` was called; final


class _SocketReader:
    """Reads the socket in large chunks and hands websocket-client's frame parser exactly the
    bytes it asks for (it asks for a frame's header, then its payload: two system calls per
    frame without this, and two hand-overs of the GIL to the waiting consumer).

    *before_waiting* runs each time the reader is about to block on the socket: that is where
    the events parsed so far must be handed over. Not between frames: websocket-client answers
    a ping inside its frame loop and goes on reading, so a ping arriving right after a
    response's terminal frame would otherwise hold that event back until the next data frame.
    """

    __slots__ = ("_before_waiting", "_buffer", "_position", "_sock")

    def __init__(self, sock: Any, before_waiting: Callable[[], None]) -> None:
        self._sock = sock
        self._before_waiting = before_waiting
        self._buffer = b""
        self._position = 0

    def recv(self, size: int) -> bytes:
        if self._position >= len(self._buffer):
            self._before_waiting()
            data = self._sock.recv(65536)
            if not data:
                raise websocket.WebSocketConnectionClosedException("the connection was lost")
            self._buffer, self._position = data, 0
        start = self._position
        self._position = min(start + size, len(self._buffer))
        return self._buffer[start : self._position]


#: Events the reader passes to the consumer in one queue item, at most (a batch holds what had
#: already arrived when the reader would otherwise block on the socket).
_BATCH: Final = 256


class _QueueOverflow(Exception):
    """The consumer fell ``max_queue`` events behind (raised to stop the reader)."""


class _FrameTooLarge(Exception):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"a server frame of {size} bytes exceeds max_frame_size ({limit})")
        self.size = size


@attrs.define
class _End:
    """The last item a link's queue ever holds: why the socket ended."""

    error: OpenAIWSError
    by_us: bool = False


class _Link:
    """One socket: the websocket-client object, its reader thread and its queue."""

    def __init__(self, ws: Any, number: int, name: str) -> None:
        self.ws = ws  # a websocket.WebSocket (the library is not fully typed)
        self.number = number
        # the reader puts batches of events (or errors, in their place) and, last, an _End
        self.queue: queue.Queue[list[ServerEvent | ProtocolError] | _End] = queue.Queue()
        self.pending: collections.deque[ServerEvent | ProtocolError | _End] = collections.deque()
        self.backlog = 0  # events put by the reader and not yet taken by the consumer
        self.backlog_lock = threading.Lock()
        self.opened_at = time.monotonic()
        self.ended = threading.Event()
        self.end: _End | None = None
        self.closing = False  # we are closing it: its end is not a failure
        self.ended_at: float | None = None
        self.reader = threading.Thread(target=lambda: None, name=f"{name}-reader-{number}")

    @property
    def alive(self) -> bool:
        return not self.ended.is_set() and not self.closing

    def age(self) -> float:
        return time.monotonic() - self.opened_at

    def take(self, timeout: float | None) -> ServerEvent | ProtocolError | _End:
        """The next item for the consumer (one consumer at a time).

        Raises:
            queue.Empty: nothing arrived within *timeout*.
        """
        if self.pending:
            return self.pending.popleft()
        item = self.queue.get(timeout=timeout)
        if isinstance(item, _End):
            return item
        with self.backlog_lock:
            self.backlog -= len(item)
        self.pending.extend(item)
        return self.pending.popleft()


def _final_close(link: _Link) -> ConnectionClosed | None:
    """The server's close of *link*, when its code rules out reopening it automatically."""
    end = link.end
    error = end.error if end is not None else None
    if end is None or end.by_us or not isinstance(error, ConnectionClosed):
        return None
    if error.code is None or error.code in RECONNECT_CODES:
        return None
    return error


class WebSocketConnection:
    """A WebSocket-mode connection to the Responses API.

    Args:
        url: the WebSocket URL, e.g. ``wss://api.openai.com/v1/responses``.
        api_key: sent as ``Authorization: Bearer <key>`` (never logged or shown).
        headers: extra handshake headers, e.g. ``OpenAI-Beta``.
        connect_timeout: seconds for TCP, TLS, proxy and the handshake.
        max_retries: reconnection attempts after a drop before giving up.
        backoff: seconds to wait before each reconnection attempt (the last value repeats).
        max_age: seconds after which the socket is replaced, between responses, before the
            server's 60-minute limit ends it.
        proxy: an ``http://host:port`` proxy (HTTP CONNECT); None follows ``HTTPS_PROXY`` /
            ``HTTP_PROXY`` / ``NO_PROXY`` as requests does; False never uses a proxy.
        sslopt: options for the TLS layer, as websocket-client takes them (``ca_certs``,
            ``certfile``, ``context``...). Verification is on by default; turning it off
            (``cert_reqs=ssl.CERT_NONE`` or ``check_hostname=False``) emits an
            :class:`InsecureTransportWarning` and a log line.
        max_frame_size: a server frame larger than this many bytes fails the connection with
            a :class:`~openai_ws.exceptions.ProtocolError` before it is read.
        max_queue: events the reader may get ahead of the consumer; beyond that the connection
            fails with a :class:`~openai_ws.exceptions.TransportError` instead of growing
            without bound or dropping events.
        name: a label for threads and logs.

    Thread-safety: :meth:`send` and :meth:`close` may be called from any thread. One response
    is consumed at a time; a second concurrent :meth:`create` or :meth:`events` raises
    :class:`~openai_ws.exceptions.ConcurrencyError`.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        connect_timeout: float = 10.0,
        max_retries: int = 5,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        max_age: float = 55 * 60,
        proxy: str | bool | None = None,
        sslopt: Mapping[str, Any] | None = None,
        max_frame_size: int = 64 * 1024 * 1024,
        max_queue: int = 100_000,
        name: str | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("ws", "wss") or not parsed.hostname:
            raise ConfigurationError(
                f"a WebSocket URL must start with ws:// or wss://, got {url!r}"
            )
        if max_retries < 0:
            raise ConfigurationError("max_retries must be 0 or more")
        if not backoff or any(b < 0 for b in backoff):
            raise ConfigurationError("backoff must be a non-empty sequence of seconds >= 0")
        if connect_timeout <= 0 or max_age <= 0 or max_frame_size <= 0 or max_queue <= 0:
            raise ConfigurationError(
                "connect_timeout, max_age, max_frame_size and max_queue must be positive"
            )
        self.url = url
        self._headers = auth_headers(api_key, headers)
        self._proxy = resolve_proxy(url, proxy)
        self._sslopt = dict(sslopt or {})
        self._check_tls(parsed.scheme)
        self.connect_timeout = connect_timeout
        self.max_retries = max_retries
        self.backoff = tuple(float(b) for b in backoff)
        self.max_age = max_age
        self.max_frame_size = max_frame_size
        self.max_queue = max_queue
        self.name = name or f"openai-ws-{id(self):x}"
        self._lock = threading.Lock()  # guards the fields below
        self._busy = threading.Lock()  # held while a response (or events()) is consumed
        self._wake = threading.Event()  # interrupts backoff sleeps on close()
        self._link: _Link | None = None
        self._links = 0
        self._closed = False
        self._failures = 0  # failed reconnection attempts since the last success
        self._gave_up: ConnectError | None = None
        self._previous_response_id: str | None = None
        self._finished: collections.deque[str] = collections.deque(maxlen=_FINISHED_MEMORY)
        #: how many times a socket was opened (the first one included)
        self.connections_opened = 0

    def __repr__(self) -> str:
        return f"<WebSocketConnection {self.name} {self.url} {self.state.value}>"

    # -- state -----------------------------------------------------------------------------

    @property
    def state(self) -> WebSocketState:
        with self._lock:
            if self._closed:
                return WebSocketState.CLOSED
            if self._link is None:
                return WebSocketState.NEW if self._links == 0 else WebSocketState.DISCONNECTED
            return WebSocketState.OPEN if self._link.alive else WebSocketState.DISCONNECTED

    def is_connected(self) -> bool:
        """Whether a socket is open right now."""
        return self.state is WebSocketState.OPEN

    @property
    def needs_connect(self) -> bool:
        """Whether only :meth:`connect` reopens the connection: the server closed the socket
        with a code after which it is not reopened automatically (1000, 1008, 4xxx...), or the
        reconnection attempts after a drop were spent."""
        with self._lock:
            if self._closed:
                return False
            if self._gave_up is not None:
                return True
            link = self._link
        return link is not None and _final_close(link) is not None

    @property
    def previous_response_id(self) -> str | None:
        """The id of the last response that completed on the current socket, which the server
        holds in its connection cache; None after a reconnect, a failure or an abandon."""
        with self._lock:
            return self._previous_response_id

    @property
    def socket_age(self) -> float | None:
        """Seconds since the current socket opened, or None."""
        with self._lock:
            link = self._link
        return link.age() if link is not None and link.alive else None

    # -- connecting ------------------------------------------------------------------------

    def _check_tls(self, scheme: str) -> None:
        if scheme != "wss":
            return
        insecure = (
            self._sslopt.get("cert_reqs") == ssl.CERT_NONE
            or self._sslopt.get("check_hostname") is False
        )
        context = self._sslopt.get("context")
        if isinstance(context, ssl.SSLContext):
            insecure = (
                insecure or context.verify_mode == ssl.CERT_NONE or not context.check_hostname
            )
        if insecure:
            message = f"TLS verification is disabled for {self.url} by sslopt"
            warnings.warn(message, InsecureTransportWarning, stacklevel=3)
            logger.warning(message)

    def connect(self) -> WebSocketConnection:
        """Open the socket now (the first :meth:`create` does it otherwise).

        A no-op when a socket is already open. Resets the reconnection budget.

        Raises:
            ConnectError: the handshake failed (``status_code`` set when the server answered,
                e.g. 426 when the URL has no WebSocket mode, 401 for a bad key).
            ConnectionClosed: :meth:`close` was called.
        """
        with self._lock:
            self._raise_if_closed()
            link = self._link
            self._gave_up = None
            self._failures = 0
        if link is not None and link.alive:
            return self
        if link is not None:
            self._retire(link, graceful=False)
        self._open()
        return self

    def ensure_connected(self) -> None:
        """Make sure a socket is open for the next response: reuse it, replace it when it is
        older than ``max_age``, or reconnect after a drop (with the backoff), as :meth:`create`
        would. Call it before deciding whether to chain from :attr:`previous_response_id`.

        Raises:
            ConnectError, ConnectionClosed: as :meth:`create`.
        """
        if not self._busy.acquire(blocking=False):
            self._ready_link(idle=False)  # a response is being read in another thread
            return
        try:
            self._ready_link(idle=True)
        finally:
            self._busy.release()

    def _raise_if_closed(self) -> None:
        if self._closed:
            raise ConnectionClosed(
                "this connection was closed by close(); create a new WebSocketConnection",
                code=1000,
                retryable=False,
            )

    def _open(self) -> _Link:
        """One connection attempt."""
        options: dict[str, Any] = {
            "header": [f"{k}: {v}" for k, v in self._headers.items()],
            "timeout": self.connect_timeout,
            "redirect_limit": 0,  # never carry the Authorization header to a redirect target
            "suppress_origin": True,
        }
        if self._proxy.enabled:
            options.update(
                http_proxy_host=self._proxy.host,
                http_proxy_port=self._proxy.port,
                http_proxy_auth=self._proxy.auth,
                proxy_type="http",
            )
        else:
            # websocket-client reads the proxy environment itself unless told where to go:
            # a proxy entry that every host bypasses keeps it direct, as we decided.
            options.update(http_proxy_host="direct.invalid", http_proxy_port=1, http_no_proxy=["*"])
        ws: Any = websocket.WebSocket(
            enable_multithread=True, skip_utf8_validation=True, sslopt=self._sslopt or None
        )
        try:
            ws.connect(self.url, **options)
        except websocket.WebSocketBadStatusException as exc:
            raise self._refused(exc.status_code, exc.resp_headers, exc.resp_body) from exc
        except websocket.WebSocketException as exc:
            response = getattr(ws, "handshake_response", None)
            status = getattr(response, "status", None)
            if status is not None and 300 <= status < 400:
                location = response.headers.get("location", "?") if response else "?"
                raise ConnectError(
                    f"the WebSocket handshake at {self.url} was redirected ({status} to "
                    f"{location}); handshake redirects are not followed",
                    status_code=status,
                    headers=response.headers if response else None,
                    retryable=False,
                ) from exc
            raise self._connect_failed(exc) from exc
        except ssl.SSLCertVerificationError as exc:
            raise ConnectError(
                f"TLS certificate verification failed for {self.url}: {exc.verify_message}",
                retryable=False,
            ) from exc
        except (OSError, ValueError) as exc:
            raise self._connect_failed(exc) from exc
        ws.settimeout(None)  # the reader blocks; user timeouts are deadlines on the queue
        self._limit_frames(ws)
        with self._lock:
            self._links += 1
            link = _Link(ws, self._links, self.name)
            closed = self._closed
            if not closed:
                self._link = link
                self._previous_response_id = None  # a new socket has an empty cache
                self.connections_opened += 1
        if closed:  # close() ran while we were connecting
            ws.abort()
            ws.shutdown()
            self._raise_if_closed()
        # daemon: a program that forgets close() must still be able to exit
        link.reader = threading.Thread(
            target=self._read, args=(link,), name=f"{self.name}-reader-{link.number}", daemon=True
        )
        link.reader.start()
        logger.info("websocket %s: connected to %s (socket %d)", self.name, self.url, link.number)
        return link

    def _refused(self, status: int, headers: Any, body: Any) -> ConnectError:
        detail = ""
        if isinstance(body, (bytes, str)) and body:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            try:
                decoded = json.loads(text)
                error = decoded.get("error", decoded) if isinstance(decoded, dict) else {}
                detail = str(error.get("message", "")) if isinstance(error, dict) else ""
            except ValueError:
                detail = text.strip()[:200]
        retryable = status >= 500 or status in (408, 429)
        message = f"the WebSocket handshake at {self.url} was refused with HTTP {status}"
        if status == 426:
            message += " (no WebSocket mode here)"
        if detail:
            message += f": {detail}"
        return ConnectError(
            message, status_code=status, headers=dict(headers or {}), retryable=retryable
        )

    def _connect_failed(self, exc: BaseException) -> ConnectError:
        if isinstance(exc, (TimeoutError, websocket.WebSocketTimeoutException)):
            text = f"timed out after {self.connect_timeout:g}s"
        else:
            text = str(exc) or type(exc).__name__
        return ConnectError(f"could not connect to {self.url}: {text}", retryable=True)

    def _limit_frames(self, ws: Any) -> None:
        """Refuse a frame larger than max_frame_size as soon as its length is known."""
        frames = ws.frame_buffer
        read_length = frames.recv_length
        limit = self.max_frame_size

        def checked_length() -> None:
            read_length()
            if frames.length is not None and frames.length > limit:
                raise _FrameTooLarge(frames.length, limit)

        setattr(frames, "recv_length", checked_length)  # noqa: B010 - patching one instance

    def _ready_link(self, *, idle: bool) -> _Link:
        """The open socket to use for the next response: reuse, rotate, or reconnect.
        *idle*: the caller holds ``_busy`` and no response is in flight, so what the socket
        received meanwhile can be checked."""
        with self._lock:
            self._raise_if_closed()
            link = self._link
            gave_up = self._gave_up
        if gave_up is not None:
            raise gave_up
        if link is not None and link.alive:
            if idle and not self._idle_frames_were_valid(link):
                self._retire(link, graceful=True, reason="invalid frame between responses")
                return self._open()
            if link.age() < self.max_age:
                return link
            logger.info(
                "websocket %s: socket %d is %.0fs old: rotating", self.name, link.number, link.age()
            )
            self._retire(link, graceful=True, reason="rotating before the connection age limit")
            return self._open()
        if link is None:
            return self._open()
        final = _final_close(link)
        if final is not None:
            raise ConnectionClosed(
                f"the server closed the connection with code {final.code}"
                f"{f' ({final.reason})' if final.reason else ''}; it is not reopened "
                "automatically after this code (call connect() to reopen it)",
                code=final.code,
                reason=final.reason,
                retryable=False,
            )
        end = link.end
        if end is not None and not end.by_us and isinstance(end.error, ConnectionClosed):
            return self._reconnect(link)
        return self._open()  # we ended it ourselves (abandon, timeout): open a new one now

    def _idle_frames_were_valid(self, link: _Link) -> bool:
        """Sort what the socket received while no response was in flight, before the next
        request is sent: late events of finished responses are dropped; an invalid frame
        (which no response can own) means the socket is not to be trusted: False.

        Called only while the caller holds ``_busy`` with no response in flight.
        """
        if not link.pending and link.queue.empty():
            return True
        kept: list[ServerEvent | ProtocolError | _End] = []
        invalid: ProtocolError | None = None
        while True:
            try:
                item = link.take(0)
            except queue.Empty:
                break
            if isinstance(item, ProtocolError):
                invalid = item
            elif isinstance(item, _End) or not self._stale(item):
                kept.append(item)
            else:
                logger.debug("websocket %s: dropped a late %s", self.name, item.type)
        link.pending.extend(kept)
        if invalid is not None:
            logger.warning(
                "websocket %s: socket %d sent an invalid frame between responses (%s); "
                "opening a new socket",
                self.name,
                link.number,
                invalid,
            )
            return False
        return True

    def _reconnect(self, dropped: _Link) -> _Link:
        """Reconnect after a drop, waiting the backoff before each attempt."""
        since = dropped.ended_at or time.monotonic()
        while True:
            with self._lock:
                attempt = self._failures
            if attempt >= self.max_retries:
                error = ConnectError(
                    f"gave up reconnecting to {self.url} after {attempt} failed attempts",
                    retryable=False,
                )
                with self._lock:
                    self._gave_up = error
                raise error
            delay = self.backoff[min(attempt, len(self.backoff) - 1)]
            wait = delay - (time.monotonic() - since) if attempt == 0 else delay
            if wait > 0 and self._wake.wait(wait):
                self._raise_if_closed()
            try:
                link = self._open()
            except ConnectError as exc:
                with self._lock:
                    self._failures += 1
                    failures = self._failures
                logger.warning(
                    "websocket %s: reconnect attempt %d failed: %s", self.name, failures, exc
                )
                if not exc.retryable:
                    with self._lock:
                        self._gave_up = exc
                    raise
                since = time.monotonic()
                continue
            with self._lock:
                self._failures = 0
            logger.info("websocket %s: reconnected after a drop", self.name)
            return link

    # -- the reader ------------------------------------------------------------------------

    def _read(self, link: _Link) -> None:
        """The reader thread: the only caller of recv on this socket."""
        ws = link.ws
        put = link.queue.put
        limit = self.max_queue
        debug = logger.isEnabledFor(logging.DEBUG)
        batch: list[ServerEvent | ProtocolError] = []

        def hand_over() -> None:
            """Give the consumer the events parsed so far (within the max_queue bound)."""
            if not batch:
                return
            with link.backlog_lock:
                accepted = batch[: max(0, limit - link.backlog)]
                link.backlog += len(accepted)
            if accepted:
                put(accepted)
            overflow = len(accepted) < len(batch)
            batch.clear()  # on overflow, the rest is not delivered: the failure says why
            if overflow:
                raise _QueueOverflow

        ws.frame_buffer.recv = _SocketReader(ws.sock, hand_over).recv
        end: _End | None = None
        try:
            while True:
                if len(batch) >= _BATCH:
                    hand_over()
                opcode, frame = ws.recv_data_frame(False)
                data = frame.data
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    if debug:
                        logger.debug(
                            "websocket %s: recv %s",
                            self.name,
                            redact(bytes(data[:500]).decode("utf-8", "replace")),
                        )
                    try:
                        batch.append(parse_server_event(data))
                    except ProtocolError as exc:
                        batch.append(exc)
                elif opcode == websocket.ABNF.OPCODE_CLOSE:
                    code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                    reason = bytes(data[2:]).decode("utf-8", "replace")
                    end = _End(
                        ConnectionClosed(
                            f"the server closed the connection with code {code}"
                            + (f" ({reason})" if reason else ""),
                            code=code,
                            reason=reason,
                        ),
                        by_us=link.closing,
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
            end = _End(
                TransportError(
                    f"the consumer fell {limit} events behind the socket; the connection was "
                    "closed rather than drop events or grow without bound"
                )
            )
            with contextlib.suppress(Exception):
                ws.send_close(1008, b"client queue overflow")
        except _FrameTooLarge as exc:
            end = _End(ProtocolError(str(exc)))
            with contextlib.suppress(Exception):
                ws.send_close(1009, b"frame too large")
        except (websocket.WebSocketProtocolException, websocket.WebSocketPayloadException) as exc:
            end = _End(ProtocolError(f"invalid WebSocket framing: {exc}"))
            with contextlib.suppress(Exception):
                ws.send_close(1002, b"protocol error")
        except (
            websocket.WebSocketConnectionClosedException,
            OSError,
            ssl.SSLError,
            websocket.WebSocketException,
        ) as exc:
            end = _End(
                ConnectionClosed(
                    f"the connection was lost without a close frame ({type(exc).__name__})",
                    code=1006,
                ),
                by_us=link.closing,
            )
        except Exception as exc:  # the reader must always leave a sentinel
            error = TransportError(f"the WebSocket reader failed: {exc!r}")
            error.__cause__ = exc
            end = _End(error)
        finally:
            if end is None:  # pragma: no cover - every path above sets it
                end = _End(TransportError("the WebSocket reader stopped"))
            if batch:
                put(batch)  # what arrived before the end is delivered before it
            link.end = end
            link.ended_at = time.monotonic()
            link.ended.set()
            put(end)
            with contextlib.suppress(Exception):
                ws.abort()
            if end.by_us:
                logger.info("websocket %s: socket %d closed", self.name, link.number)
            else:
                logger.warning(
                    "websocket %s: socket %d ended: %s", self.name, link.number, end.error
                )

    # -- sending and receiving -------------------------------------------------------------

    def send(self, event: Mapping[str, Any]) -> None:
        """Send one client event (a JSON object) on the open socket, connecting if needed.

        Raises:
            ConnectionClosed: the socket is gone (the event may or may not have been sent).
        """
        link = self._ready_link(idle=False)
        self._send_on(link, event)

    def _send_on(self, link: _Link, event: Mapping[str, Any]) -> None:
        text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("websocket %s: send %s", self.name, redact(text[:500]))
        try:
            link.ws.send(text)
        except (websocket.WebSocketException, OSError) as exc:
            raise ConnectionClosed(
                f"sending on the WebSocket failed: {exc}", code=1006, retryable=True
            ) from exc

    def _get(self, link: _Link, deadline: Deadline, phase: str, seconds: float | None) -> Any:
        try:
            return link.take(deadline.remaining())
        except queue.Empty:
            what = "the first event" if phase == "first_event" else "the next event"
            raise StreamTimeout(
                f"no event within {seconds:g}s while waiting for {what}",
                timeout=seconds,
                phase=phase,
            ) from None

    def events(self, timeout: float | None = None) -> Iterator[ServerEvent]:
        """Every event of the open socket as it arrives, until the socket ends.

        For callers who :meth:`send` their own client events. Ends quietly when the socket is
        closed by :meth:`close`; raises the reason otherwise.

        Args:
            timeout: the longest wait for any one event (:class:`StreamTimeout` after it).
        """
        if not self._busy.acquire(blocking=False):
            raise ConcurrencyError("this connection is already being consumed in another thread")
        try:
            with self._lock:
                link = self._link
            if link is None:
                return
            while True:
                item = self._get(link, Deadline(timeout), "idle", timeout)
                if isinstance(item, _End):
                    if item.by_us:
                        return
                    raise item.error
                if isinstance(item, ProtocolError):
                    raise item
                yield item
        finally:
            self._busy.release()

    def create(
        self,
        payload: Mapping[str, Any],
        *,
        timeout: float | None = None,
        first_event_timeout: float | None = None,
    ) -> ResponseEvents:
        """Send ``response.create`` with *payload* and return that response's events.

        The events end with the terminal one (``response.completed``, ``response.failed``,
        ``response.incomplete`` or ``error``): API errors are events, not exceptions. ``stream``
        is dropped (it is implicit). Leaving the iterator before its end abandons the response:
        the socket is closed (closing is the only cancel WebSocket mode has) and the next call
        opens a new one.

        Args:
            payload: the request body, as for ``POST /v1/responses``.
            timeout: the longest wait between two events.
            first_event_timeout: the longest wait for the first event (default: *timeout*).

        Raises:
            ConcurrencyError: another response is being consumed on this connection.
            ConnectError: no socket could be opened.
            ConnectionClosed: the socket ended before the terminal event (``retryable`` tells
                whether trying again may work); also raised while iterating.
            StreamTimeout: a deadline passed (while iterating); the response is abandoned.
            ProtocolError: a frame broke the protocol (while iterating); the socket is closed.
        """
        if not isinstance(payload, Mapping):
            raise TypeError(f"payload must be a mapping, got {type(payload).__name__}")
        if payload.get("background"):
            raise ValueError("background responses are not supported in WebSocket mode")
        body = {k: v for k, v in payload.items() if k not in ("stream", "background", "type")}
        body = {"type": "response.create", **body}
        if not self._busy.acquire(blocking=False):
            raise ConcurrencyError(
                "a response is already in flight on this connection; WebSocket mode carries "
                "one response at a time (use one connection per concurrent conversation)"
            )
        try:
            link = self._ready_link(idle=True)
            self._send_on(link, body)
        except BaseException:
            self._busy.release()
            raise
        first = first_event_timeout if first_event_timeout is not None else timeout
        return ResponseEvents(self, link, first, timeout)

    # -- ending responses and sockets ------------------------------------------------------

    def _stale(self, event: ServerEvent) -> bool:
        """A lifecycle event of a response that already ended on this connection (an API
        may send ``response.failed`` after the ``error`` that ended the response)."""
        if isinstance(event, ResponseEvent):
            with self._lock:
                return event.response_id in self._finished
        return False

    def _finish(self, link: _Link, event: ServerEvent, response_id: str | None) -> None:
        """Book-keeping at a response's terminal event."""
        completed = event.type in ("response.completed", "response.done") and (
            isinstance(event, ResponseEvent) and event.status in (None, "completed")
        )
        with self._lock:
            if response_id:
                self._finished.append(response_id)
            if link is self._link:
                self._previous_response_id = response_id if completed and response_id else None

    def _abandon(self, link: _Link, why: str) -> None:
        """The response in flight will not be read to its end: close its socket to cancel it."""
        with self._lock:
            if link is self._link:
                self._previous_response_id = None
        if link.alive:
            logger.info("websocket %s: abandoning the response in flight (%s)", self.name, why)
        self._retire(link, graceful=True, reason="response abandoned")

    def _retire(
        self, link: _Link, *, graceful: bool, reason: str = "", timeout: float = 2.0
    ) -> None:
        """Close a socket from a user thread: close frame, bounded join, then shut it down."""
        link.closing = True
        ws = link.ws
        if graceful and not link.ended.is_set():
            with contextlib.suppress(Exception):
                ws.send_close(1000, reason.encode()[:120])
        # wake a consumer blocked on this queue now; the reader adds its own sentinel later
        link.queue.put(
            _End(
                ConnectionClosed(
                    "the connection was closed by the client", code=1000, retryable=False
                ),
                by_us=True,
            )
        )
        if threading.current_thread() is not link.reader:
            if link.reader.is_alive():
                link.ended.wait(timeout)
            if link.reader.is_alive():
                with contextlib.suppress(Exception):
                    ws.abort()
                link.reader.join(timeout)
        with contextlib.suppress(Exception):
            ws.shutdown()

    def close(self, timeout: float = 2.0) -> None:
        """Close the connection: send a close frame, wait (at most *timeout*) for the reader to
        finish, and shut the socket down. A consumer blocked in :meth:`create` or :meth:`events`
        in another thread wakes up with :class:`~openai_ws.exceptions.ConnectionClosed`.

        Idempotent; safe from any thread.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            link = self._link
            self._previous_response_id = None
        self._wake.set()
        if link is not None:
            self._retire(link, graceful=True, reason="client closing", timeout=timeout)
        logger.info("websocket %s: closed", self.name)

    def __enter__(self) -> WebSocketConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- warm-up ---------------------------------------------------------------------------

    def warm_up(
        self,
        model: str,
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        instructions: str | None = None,
        timeout: float = 30.0,
        **fields: Any,
    ) -> str:
        """Prepare the server for the next turn without generating: ``generate: false``.

        Sends ``input: []`` with the model, tools and instructions the next turn will use, and
        waits (at most *timeout* seconds in all) for the response to complete. Its id is the
        :attr:`previous_response_id` the next turn can chain from.

        Returns:
            The warm-up response's id.

        Raises:
            APIError: the server refused it.
            StreamTimeout: it did not complete in time.
        """
        payload: dict[str, Any] = {"model": model, "input": [], "generate": False, **fields}
        if tools is not None:
            payload["tools"] = list(tools)
        if instructions is not None:
            payload["instructions"] = instructions
        deadline = Deadline(timeout)
        stream = self.create(payload, timeout=timeout)
        try:
            for event in stream:
                if deadline.expired():
                    raise StreamTimeout(
                        f"the warm-up did not complete within {timeout:g}s",
                        timeout=timeout,
                        phase="idle",
                    )
                if isinstance(event, ErrorEvent):
                    raise event.to_exception()
                if isinstance(event, ResponseEvent) and event.is_terminal:
                    if event.status not in (None, "completed"):
                        raise TransportError(f"the warm-up ended with status {event.status!r}")
                    if event.response_id is None:
                        raise ProtocolError("the warm-up completed without a response id")
                    return event.response_id
        finally:
            stream.close()
        raise ProtocolError("the warm-up ended without a terminal event")  # pragma: no cover


class ResponseEvents(Iterator[ServerEvent]):
    """The events of one response on a :class:`WebSocketConnection`, ending with the terminal
    one. Closing it (or leaving a ``with`` block, or dropping it) before the end abandons the
    response.

    Attributes:
        response_id: the response's id, once ``response.created`` arrived.
        terminal: the terminal event, once it arrived.
    """

    def __init__(
        self,
        connection: WebSocketConnection,
        link: _Link,
        first_timeout: float | None,
        timeout: float | None,
    ) -> None:
        self._connection = connection
        self._link = link
        self._first_timeout = first_timeout
        self._timeout = timeout
        self._seen_any = False
        self._done = False  # the terminal event (or an error) ended it
        self._released = False
        self._release_lock = threading.Lock()
        self.response_id: str | None = None
        self.terminal: ServerEvent | None = None
        self.request_id: str | None = None

    def __iter__(self) -> ResponseEvents:
        return self

    def __next__(self) -> ServerEvent:
        if self._done:
            raise StopIteration
        connection = self._connection
        link = self._link
        try:
            while True:
                if link.pending:  # already received: no waiting, no deadline to set up
                    item = link.pending.popleft()
                elif self._seen_any:
                    item = connection._get(link, Deadline(self._timeout), "idle", self._timeout)
                else:
                    seconds = self._first_timeout
                    item = connection._get(link, Deadline(seconds), "first_event", seconds)
                if isinstance(item, _End):
                    raise item.error
                if isinstance(item, ProtocolError):
                    raise item
                if not self._seen_any and connection._stale(item):
                    logger.debug(
                        "websocket %s: dropped a late %s of an earlier response",
                        connection.name,
                        item.type,
                    )
                    continue
                self._seen_any = True
                if isinstance(item, ResponseEvent) and self.response_id is None:
                    self.response_id = item.response_id
                event: ServerEvent = item
                if event.is_terminal:
                    self.terminal = event
                    self._done = True
                    connection._finish(link, event, self.response_id)
                    self._release()
                return event
        except BaseException as exc:
            self._fail(exc)
            raise

    def _fail(self, exc: BaseException) -> None:
        self._done = True
        connection = self._connection
        if (
            isinstance(exc, ConnectionClosed)
            and self._link.end is not None
            and not self._link.end.by_us
        ):
            why = "the socket ended"
        else:
            why = type(exc).__name__
        connection._abandon(self._link, why)
        self._release()

    def _release(self) -> None:
        # close() from another thread and the consumer's own failure may both get here
        with self._release_lock:
            if self._released:
                return
            self._released = True
        self._connection._busy.release()

    def close(self) -> None:
        """Stop reading. Before the terminal event, this abandons the response (the socket is
        closed to cancel it). Idempotent."""
        if not self._done:
            self._done = True
            self._connection._abandon(self._link, "the caller stopped reading")
        self._release()

    def __enter__(self) -> ResponseEvents:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not self._released:
            with contextlib.suppress(Exception):
                self.close()
