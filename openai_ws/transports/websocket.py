"""WebSocket mode: one connection per session, one socket at a time, one reader thread.

:class:`WebSocketConnection` is the state machine above the sockets (``_link.Link``): which
socket is current, reconnection with backoff after a drop, rotation before the server's
60-minute limit, the response cache the server keeps per socket. Each socket's reader thread
alone calls ``recv``; user threads only send (under the library's lock) and take events from
the socket's queue, within the turn's :class:`~openai_ws.transports._common.Deadline`.

One response is in flight per socket at a time (the server processes ``response.create``
sequentially): a second concurrent :meth:`~WebSocketConnection.create` on the same connection
raises :class:`~openai_ws.exceptions.ConcurrencyError`. :class:`~openai_ws.Client` serialises
the turns of a session for you.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import logging
import queue
import ssl
import threading
import time
import urllib.parse
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from .._json import compact
from .._redact import redact
from ..exceptions import (
    APIError,
    ConcurrencyError,
    ConfigurationError,
    ConnectError,
    ConnectionClosed,
    OpenAIWSError,
    ProtocolError,
    StreamTimeout,
    TransportError,
)
from ..protocol import ErrorEvent, ResponseCompleted, ResponseEvent, ServerEvent
from ._common import Deadline, KeySource, auth_headers, resolve_proxy
from ._link import End, Link, open_link
from .base import ResponseStream, Transport

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_FIRST_EVENT_TIMEOUT",
    "InsecureTransportWarning",
    "ResponseEvents",
    "WebSocketConnection",
    "WebSocketState",
]

logger = logging.getLogger("openai_ws")

#: Seconds to wait before each reconnection attempt after a drop.
DEFAULT_BACKOFF: Final = (1.0, 2.0, 4.0, 8.0, 16.0)
#: How long a socket may stay silent after a request when no ``first_event_timeout`` is given.
#: The API acknowledges a request at once (``response.created``), however long the model then
#: thinks; a socket that says nothing for this long is not working, and ``auto`` falls back.
DEFAULT_FIRST_EVENT_TIMEOUT: Final = 10.0
_FINISHED_MEMORY: Final = 32


class InsecureTransportWarning(UserWarning):
    """TLS certificate or host name verification was turned off through ``sslopt``."""


class WebSocketState(str, enum.Enum):
    """Where a :class:`WebSocketConnection` stands."""

    NEW = "new"  #: never connected
    OPEN = "open"  #: a socket is open
    DISCONNECTED = "disconnected"  #: the socket ended; the next use reconnects if it may
    CLOSED = "closed"  #: :meth:`WebSocketConnection.close` was called; final


class WebSocketConnection(Transport):
    """A WebSocket-mode connection to the Responses API.

    Args:
        url: the WebSocket URL, e.g. ``wss://api.openai.com/v1/responses``.
        api_key: sent as ``Authorization: Bearer <key>`` (never logged or shown); a callable
            is called again for every new socket, so a rotated key reaches the next one.
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
        ping_interval: seconds of silence on the socket after which its reader sends a ping
            (None: no keepalive). Finds a dead connection during a long silent phase.
        ping_timeout: seconds a ping may go unanswered (nothing at all received) before the
            socket counts as dropped (``ConnectionClosed``, code 1006, retryable).
        first_event_timeout: how long a socket may stay silent after a request, for
            :meth:`open` (:data:`DEFAULT_FIRST_EVENT_TIMEOUT` when None).
        name: a label for threads and logs.

    Thread-safety: :meth:`send`, :meth:`close` and :meth:`discard` may be called from any
    thread; :meth:`close` also interrupts a connection attempt (TCP, TLS, handshake) in
    progress. One response is consumed at a time; a second concurrent :meth:`create` or
    :meth:`events` raises :class:`~openai_ws.exceptions.ConcurrencyError`.
    """

    kind = "websocket"

    def __init__(
        self,
        url: str,
        *,
        api_key: KeySource,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        connect_timeout: float = 10.0,
        max_retries: int = 5,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        max_age: float = 55 * 60,
        proxy: str | bool | None = None,
        sslopt: Mapping[str, Any] | None = None,
        max_frame_size: int = 64 * 1024 * 1024,
        max_queue: int = 100_000,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        first_event_timeout: float | None = None,
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
        for label, value in (
            ("ping_interval", ping_interval),
            ("ping_timeout", ping_timeout),
            ("first_event_timeout", first_event_timeout),
        ):
            if value is not None and value <= 0:
                raise ConfigurationError(f"{label} must be positive (or None), got {value!r}")
        self.url = url
        self._key = api_key
        self._extra_headers = auth_headers(None, headers)
        if isinstance(api_key, str):
            auth_headers(api_key, ())  # check it now, and register it for redaction
        self._proxy = resolve_proxy(url, proxy)
        self._sslopt = dict(sslopt or {})
        self._check_tls(parsed.scheme)
        self.connect_timeout = connect_timeout
        self.max_retries = max_retries
        self.backoff = tuple(float(b) for b in backoff)
        self.max_age = max_age
        self.max_frame_size = max_frame_size
        self.max_queue = max_queue
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout if ping_interval is not None else None
        self.first_event_timeout = first_event_timeout
        self.name = name or f"openai-ws-{id(self):x}"
        self._lock = threading.Lock()  # guards the fields below
        self._busy = threading.Lock()  # held while a response (or events()) is consumed
        self._life = Deadline(None)  # cancelled by close(): wakes connects and backoff sleeps
        self._link: Link | None = None
        self._links = 0
        self._closed = False
        self._failures = 0  # failed reconnection attempts since the last success
        self._gave_up: OpenAIWSError | None = None
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
        return link is not None and link.final_close() is not None

    @property
    def previous_response_id(self) -> str | None:
        """The id of the last response that completed on the current socket, which the server
        holds in its connection cache; None after a reconnect, a failure or an abandon."""
        with self._lock:
            return self._previous_response_id

    @property
    def cached_response_id(self) -> str | None:
        """:attr:`previous_response_id` (the :class:`~openai_ws.transports.base.Transport`
        name for it)."""
        return self.previous_response_id

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

    def _headers(self) -> dict[str, str]:
        """The handshake headers, with the key as it is now."""
        key = self._key() if callable(self._key) else self._key
        headers = dict(self._extra_headers)
        headers.update(auth_headers(key, ()))
        return headers

    def connect(self, deadline: Deadline | None = None) -> WebSocketConnection:
        """Open the socket now (the first :meth:`create` does it otherwise).

        A no-op when a socket is already open. Resets the reconnection budget.

        Args:
            deadline: bounds the wait (and :meth:`Deadline.cancel` ends it); by default only
                ``connect_timeout`` does.

        Raises:
            ConnectError: the handshake failed (``status_code`` set when the server answered,
                e.g. 426 when the URL has no WebSocket mode).
            AuthenticationError: the handshake was refused with 401 or 403.
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
            link.retire(graceful=False)
        self._open(deadline or Deadline(None))
        return self

    def ensure_connected(self, deadline: Deadline | None = None) -> None:
        """Make sure a socket is open for the next response: reuse it, replace it when it is
        older than ``max_age``, or reconnect after a drop (with the backoff), as :meth:`create`
        would. Call it before deciding whether to chain from :attr:`previous_response_id`.

        Raises:
            ConnectError, ConnectionClosed: as :meth:`create`.
            StreamTimeout: *deadline* ran out while reconnecting.
        """
        deadline = deadline or Deadline(None)
        if not self._busy.acquire(blocking=False):
            self._ready_link(deadline, idle=False)  # a response is being read in another thread
            return
        try:
            self._ready_link(deadline, idle=True)
        finally:
            self._busy.release()

    def prepare(self, deadline: Deadline) -> None:
        """Reopen the connection if the server closed it for good, then
        :meth:`ensure_connected` (the :class:`~openai_ws.transports.base.Transport` hook)."""
        if self.needs_connect:
            self.connect(deadline)
        self.ensure_connected(deadline)

    def _raise_if_closed(self) -> None:
        if self._closed:
            raise ConnectionClosed(
                "this connection was closed by close(); create a new WebSocketConnection",
                code=1000,
                retryable=False,
            )

    def _open(self, deadline: Deadline) -> Link:
        """One connection attempt."""
        with self._lock:
            self._raise_if_closed()
            self._links += 1
            number = self._links
        link = open_link(
            self.url,
            headers=self._headers(),
            connect_timeout=self.connect_timeout,
            proxy=self._proxy,
            sslopt=self._sslopt,
            max_frame_size=self.max_frame_size,
            deadline=deadline,
            closed=self._life,
            number=number,
            name=self.name,
            max_queue=self.max_queue,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
        )
        with self._lock:
            closed = self._closed
            if not closed:
                self._link = link
                self._previous_response_id = None  # a new socket has an empty cache
                self.connections_opened += 1
        if closed:  # close() ran while we were connecting
            link.retire(graceful=False, timeout=0)
            self._raise_if_closed()
        logger.info("websocket %s: connected to %s (socket %d)", self.name, self.url, number)
        return link

    def _ready_link(self, deadline: Deadline, *, idle: bool) -> Link:
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
                link.retire(graceful=True, reason="invalid frame between responses")
                return self._open(deadline)
            if link.age() < self.max_age:
                return link
            logger.info(
                "websocket %s: socket %d is %.0fs old: rotating", self.name, link.number, link.age()
            )
            link.retire(graceful=True, reason="rotating before the connection age limit")
            return self._open(deadline)
        if link is None:
            return self._open(deadline)
        final = link.final_close()
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
            return self._reconnect(link, deadline)
        return self._open(deadline)  # we ended it ourselves (abandon, timeout): open a new one

    def _idle_frames_were_valid(self, link: Link) -> bool:
        """Sort what the socket received while no response was in flight, before the next
        request is sent: late events of finished responses are dropped; an invalid frame
        (which no response can own) means the socket is not to be trusted: False.

        Called only while the caller holds ``_busy`` with no response in flight.
        """
        if not link.pending and link.queue.empty():
            return True
        kept: list[ServerEvent | ProtocolError | End] = []
        invalid: ProtocolError | None = None
        while True:
            try:
                item = link.take(0)
            except queue.Empty:
                break
            if isinstance(item, ProtocolError):
                invalid = item
            elif isinstance(item, End) or not self._stale(item):
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

    def _reconnect(self, dropped: Link, deadline: Deadline) -> Link:
        """Reconnect after a drop, waiting the backoff before each attempt (within
        *deadline*; :meth:`close` or cancelling *deadline* interrupts the wait)."""
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
            left = deadline.remaining()
            if left is not None:  # the turn's budget pays for the backoff: half of it at most
                wait = min(wait, left / 2)
            if wait > 0:
                self._sleep(wait, deadline)
            try:
                link = self._open(deadline)
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
            except APIError as exc:  # the key was refused: no use trying again with it
                with self._lock:
                    self._gave_up = exc
                raise
            with self._lock:
                self._failures = 0
            logger.info("websocket %s: reconnected after a drop", self.name)
            return link

    def _sleep(self, seconds: float, deadline: Deadline) -> None:
        """A backoff wait (shorter than what *deadline* has left), cut short by :meth:`close`
        or by cancelling *deadline*.

        Raises:
            ConnectionClosed: :meth:`close` was called, or *deadline* cancelled.
        """
        woken = threading.Event()
        undo = (deadline.on_cancel(woken.set), self._life.on_cancel(woken.set))
        try:
            woken.wait(seconds)
        finally:
            for unregister in undo:
                unregister()
        self._raise_if_closed()
        if deadline.cancelled:
            raise ConnectionClosed("reconnecting was cancelled", code=1000, retryable=False)

    # -- sending and receiving -------------------------------------------------------------

    def send(self, event: Mapping[str, Any]) -> None:
        """Send one client event (a JSON object) on the open socket, connecting if needed.

        Raises:
            ConnectionClosed: the socket is gone (the event may or may not have been sent).
        """
        link = self._ready_link(Deadline(None), idle=False)
        self._send_on(link, event)

    def _send_on(self, link: Link, event: Mapping[str, Any]) -> int:
        """Send *event* as one text frame; returns its size in bytes."""
        text = compact(event)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("websocket %s: send %s", self.name, redact(text[:500]))
        data = _utf8(text)
        link.send(data)
        return len(data)

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
                try:
                    item = link.take(timeout)
                except queue.Empty:
                    raise StreamTimeout(
                        f"no event within {timeout:g}s while waiting for the next event",
                        timeout=timeout,
                        phase="idle",
                    ) from None
                if isinstance(item, End):
                    if item.by_us:
                        return
                    raise item.error
                if isinstance(item, ProtocolError):
                    raise item
                yield item
        finally:
            self._busy.release()

    def open(
        self,
        payload: Mapping[str, Any],
        deadline: Deadline,
        *,
        headers: Mapping[str, str] | None = None,
        first_event_timeout: float | None = None,
    ) -> ResponseEvents:
        """Send ``response.create`` within the turn's *deadline* and return its events: the
        first must come within *first_event_timeout* (by default the connection's, else
        :data:`DEFAULT_FIRST_EVENT_TIMEOUT`), and no wait may outlast *deadline* (see
        :class:`~openai_ws.transports.base.Transport`). *headers* are ignored: a WebSocket
        sends its headers at the handshake."""
        first = first_event_timeout if first_event_timeout is not None else self.first_event_timeout
        if first is None:
            first = DEFAULT_FIRST_EVENT_TIMEOUT
        return self._create(payload, deadline, first, None)

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
        first = first_event_timeout if first_event_timeout is not None else timeout
        return self._create(payload, Deadline(None), first, timeout)

    def _create(
        self,
        payload: Mapping[str, Any],
        deadline: Deadline,
        first_timeout: float | None,
        idle_timeout: float | None,
    ) -> ResponseEvents:
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
            link = self._ready_link(deadline, idle=True)
            received_before = link.bytes_received  # a fast reply may arrive before the send returns
            sent = self._send_on(link, body)
        except BaseException:
            self._busy.release()
            raise
        events = ResponseEvents(self, link, deadline, first_timeout, idle_timeout)
        events._received_before = received_before
        events.bytes_sent = sent
        return events

    # -- ending responses and sockets ------------------------------------------------------

    def _stale(self, event: ServerEvent) -> bool:
        """A lifecycle event of a response that already ended on this connection (an API
        may send ``response.failed`` after the ``error`` that ended the response)."""
        if isinstance(event, ResponseEvent):
            with self._lock:
                return event.response_id in self._finished
        return False

    def _finish(self, link: Link, event: ServerEvent, response_id: str | None) -> None:
        """Book-keeping at a response's terminal event."""
        completed = isinstance(event, ResponseCompleted) and event.status in (None, "completed")
        with self._lock:
            if response_id:
                self._finished.append(response_id)
            if link is self._link:
                self._previous_response_id = response_id if completed and response_id else None

    def _abandon(self, link: Link, why: str) -> None:
        """The response in flight will not be read to its end: close its socket to cancel it."""
        with self._lock:
            if link is self._link:
                self._previous_response_id = None
        if link.alive:
            logger.info("websocket %s: abandoning the response in flight (%s)", self.name, why)
        # the close frame goes out, but no reply is waited for: a turn that abandons a
        # response (to fall back, to retry, or because the caller left) must not hang on a
        # server that stopped answering
        link.retire(graceful=True, reason="response abandoned", timeout=0.2)

    def close(self, timeout: float = 2.0) -> None:
        """Close the connection: send a close frame, wait (at most *timeout*) for the reader to
        finish, and shut the socket down. A consumer blocked in :meth:`create` or :meth:`events`
        in another thread wakes up with :class:`~openai_ws.exceptions.ConnectionClosed`; so does
        one that is connecting or waiting to reconnect.

        Idempotent; safe from any thread.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            link = self._link
            self._previous_response_id = None
        self._life.cancel()
        if link is not None:
            link.retire(graceful=True, reason="client closing", timeout=timeout)
        logger.info("websocket %s: closed", self.name)

    def discard(self) -> None:
        """Forget the socket without any I/O (see
        :meth:`~openai_ws.transports.base.Transport.discard`): what a forked child calls, so
        that the parent's socket stays open and untouched. The next request opens a new one."""
        link = self._link
        self._lock = threading.Lock()  # a lock held by another thread at fork stays held
        self._busy = threading.Lock()
        self._link = None
        self._previous_response_id = None
        self._finished.clear()
        self._gave_up = None
        self._failures = 0
        if link is not None:
            link.discard()

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
        stream = self._create(payload, deadline, timeout, timeout)
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


def _utf8(text: str) -> bytes:
    """*text* as UTF-8; a lone surrogate (which no valid request holds) becomes U+FFFD instead
    of failing the send."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode("utf-8")


class ResponseEvents(ResponseStream):
    """The events of one response on a :class:`WebSocketConnection`, ending with the terminal
    one. Closing it (or leaving a ``with`` block, or dropping it, or cancelling its deadline)
    before the end abandons the response.

    Attributes:
        response_id: the response's id, once ``response.created`` arrived.
        terminal: the terminal event, once it arrived.
    """

    transport = "websocket"

    def __init__(
        self,
        connection: WebSocketConnection,
        link: Link,
        deadline: Deadline,
        first_timeout: float | None,
        idle_timeout: float | None,
    ) -> None:
        super().__init__(
            deadline=deadline, first_event_timeout=first_timeout, idle_timeout=idle_timeout
        )
        self._connection = connection
        self._link = link
        self._received_before = link.bytes_received
        self._released = False
        self._release_lock = threading.Lock()

    def __next__(self) -> ServerEvent:
        if self._done:
            raise StopIteration
        connection = self._connection
        link = self._link
        try:
            while True:
                if link.pending:  # already received: no waiting, no deadline to set up
                    item = link.pending.popleft()
                    waited = False
                else:
                    try:
                        item = link.take(self._wait())
                    except queue.Empty:
                        raise self._timed_out() from None
                    waited = True
                if isinstance(item, End):
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
                self._arrived(item, waited=waited)
                if self.terminal is item:  # _arrived saw it end the response
                    connection._finish(link, item, self.response_id)
                    self._release()
                return item
        except BaseException as exc:
            self._fail(exc)
            raise

    def _fail(self, exc: BaseException) -> None:
        self._done = True
        if (
            isinstance(exc, ConnectionClosed)
            and self._link.end is not None
            and not self._link.end.by_us
        ):
            why = "the socket ended"
        else:
            why = type(exc).__name__
        self._connection._abandon(self._link, why)
        self._release()

    def _release(self) -> None:
        # close() from another thread and the consumer's own failure may both get here
        with self._release_lock:
            if self._released:
                return
            self._released = True
        self.bytes_received = self._link.bytes_received - self._received_before
        self._unregister()
        self._connection._busy.release()

    def close(self) -> None:
        """Stop reading. Before the terminal event, this abandons the response (the socket is
        closed to cancel it). Idempotent; safe from another thread."""
        if not self._done:
            self._done = True
            self._connection._abandon(self._link, "the caller stopped reading")
        self._release()

    def __del__(self) -> None:
        if not self._released:
            with contextlib.suppress(Exception):
                self.close()
