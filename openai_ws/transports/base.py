"""The transport seam: what a session asks of a transport, and what a response stream is.

A :class:`Transport` carries one request at a time and returns a :class:`ResponseStream` of
typed server events, ending with the terminal one. API errors are events; transport failures
are exceptions. Two implementations exist: :class:`~openai_ws.WebSocketConnection` (one per
session, one socket, one reader thread) and :class:`~openai_ws.SSETransport` (HTTP streaming,
one per client, a connection pool). :class:`~openai_ws.stream.StreamResponse` talks to them only
through this interface.

Every wait goes through the :class:`~openai_ws.transports._common.Deadline` that
:meth:`Transport.open` receives: the turn's budget, shared by every attempt, retry and
fallback, and cancellable from any thread.
"""

from __future__ import annotations

import abc
import weakref
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from ..exceptions import StreamTimeout
from ..protocol import ServerEvent
from ._common import Deadline

__all__ = ["ResponseStream", "Transport"]


class ResponseStream(Iterator[ServerEvent], abc.ABC):
    """The server events of one response, as they arrive, ending with the terminal one.

    It owns the waits of a response: the first event must come within ``first_event_timeout``,
    each later one within ``idle_timeout`` of the previous one, and neither may outlast the
    turn's :class:`~openai_ws.transports._common.Deadline` (which an arriving event restarts).
    A wait that runs out raises :class:`~openai_ws.exceptions.StreamTimeout`.

    Closing it (or dropping it, or leaving a ``with`` block) before the terminal event abandons
    the response. :meth:`close` is safe from another thread, where it wakes the consumer.

    Attributes:
        transport: ``"websocket"`` or ``"sse"``.
        response_id: the response's id, once the server said it.
        request_id: the HTTP ``x-request-id``, when the transport has one.
        terminal: the terminal event, once it arrived.
        bytes_sent: the request's size on the wire (the frame's or the body's bytes).
        bytes_received: the response's bytes received so far.
    """

    transport: ClassVar[str] = ""

    def __init__(
        self,
        *,
        deadline: Deadline | None = None,
        first_event_timeout: float | None = None,
        idle_timeout: float | None = None,
    ) -> None:
        self._deadline = deadline if deadline is not None else Deadline(None)
        self._first_timeout = first_event_timeout
        self._idle_timeout = idle_timeout
        self._seen_any = False
        self._done = False
        self.response_id: str | None = None
        self.request_id: str | None = None
        self.terminal: ServerEvent | None = None
        self.bytes_sent = 0
        self.bytes_received = 0
        # cancelling the turn closes the stream; held weakly, so that a stream the caller
        # dropped is freed (and so closed) at once, not at the next garbage collection
        this = weakref.ref(self)

        def close_if_alive() -> None:
            stream = this()
            if stream is not None:
                stream.close()

        #: unregisters the cancel hook; subclasses call it once the stream ended
        self._unregister = self._deadline.on_cancel(close_if_alive)

    def __iter__(self) -> ResponseStream:
        return self

    @property
    def done(self) -> bool:
        """Whether the stream ended (terminal event, failure or close)."""
        return self._done

    # -- the waits, for subclasses ---------------------------------------------------------

    def _wait(self) -> float | None:
        """How long the next receive may block: the phase's timeout, within the turn's budget."""
        return self._deadline.limit(self._idle_timeout if self._seen_any else self._first_timeout)

    def _timed_out(self) -> StreamTimeout:
        """The error for a receive that waited :meth:`_wait` seconds in vain."""
        phase = "idle" if self._seen_any else "first_event"
        limit = self._idle_timeout if self._seen_any else self._first_timeout
        budget = self._deadline.seconds
        if budget is not None and (limit is None or budget < limit or self._deadline.expired()):
            what = "the next event" if self._seen_any else "the first event"
            return StreamTimeout(
                f"the turn's timeout ({budget:g}s without an event) ran out while waiting for "
                f"{what}",
                timeout=budget,
                phase=phase,
            )
        what = "the first event" if phase == "first_event" else "the next event"
        return StreamTimeout(
            f"no event within {limit:g}s while waiting for {what}", timeout=limit, phase=phase
        )

    def _arrived(self, event: ServerEvent, *, waited: bool) -> None:
        """Book-keeping for an event about to be returned (*waited*: it took a blocking wait,
        so the turn's budget is given back)."""
        if waited:
            self._deadline.restart()
        self._seen_any = True
        if self.response_id is None:
            response = event.raw.get("response")
            if isinstance(response, dict):
                rid = response.get("id")
                if isinstance(rid, str):
                    self.response_id = rid
        if event.is_terminal:
            self.terminal = event
            self._done = True

    @abc.abstractmethod
    def __next__(self) -> ServerEvent: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Stop reading; before the terminal event this abandons the response. Idempotent,
        safe from any thread."""

    def __enter__(self) -> ResponseStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Transport(abc.ABC):
    """What carries a request to the Responses API and its events back.

    Thread-safety: :meth:`close` and :meth:`discard` may be called from any thread;
    :meth:`open` serves one response at a time per WebSocket (HTTP allows many).
    """

    #: ``"websocket"`` or ``"sse"``.
    kind: ClassVar[str] = ""

    @property
    def cached_response_id(self) -> str | None:
        """The id of the last response that completed on this very transport and that the
        server still holds for it without ``store`` (a WebSocket's connection-local cache);
        None when there is none (always, over HTTP)."""
        return None

    def prepare(self, deadline: Deadline) -> None:  # noqa: B027 - optional hook
        """Get ready for the next :meth:`open` (connect, reconnect, rotate...), within
        *deadline*. Call it before deciding whether to chain from :attr:`cached_response_id`."""

    @abc.abstractmethod
    def open(
        self,
        payload: Mapping[str, Any],
        deadline: Deadline,
        *,
        headers: Mapping[str, str] | None = None,
        first_event_timeout: float | None = None,
    ) -> ResponseStream:
        """Send one request and return its events.

        Args:
            payload: the request body, as for ``POST /v1/responses``.
            deadline: the turn's budget for every wait; cancelling it abandons the request.
            headers: extra headers for this request (HTTP only; a WebSocket sends its headers
                at the handshake).
            first_event_timeout: how long the transport may stay silent after the request
                (WebSocket only; None: the transport's own default). Over HTTP the wait for
                the response headers and the first event is bounded by *deadline* alone.

        Raises:
            ConnectError, ConnectionClosed, StreamTimeout, APIError, ProtocolError: the request
                could not be sent or was refused before any event.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the transport's connections (with the I/O a clean close needs).
        Idempotent."""

    @abc.abstractmethod
    def discard(self) -> None:
        """Forget every connection without any I/O: what a process forked from the owner must
        call, so that it never writes to (or shuts down) sockets its parent still uses. The
        transport stays usable; it opens new connections when next needed."""
