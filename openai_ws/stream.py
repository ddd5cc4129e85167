"""One turn: the blocking iterator :meth:`Client.stream() <openai_ws.Client.stream>` returns.

:class:`StreamResponse` runs the turn when first iterated: it waits for the session's previous
turn, picks the transport, plans a delta or a full request, sends it, and turns the server
events into stream events (:mod:`openai_ws.events`). It ends with exactly one ``done`` or
``error`` event; iterating never raises for API or transport failures.

The transport rules (``auto``):

* WebSocket first. A refused upgrade or a failed connection: HTTP at once.
* A retryable drop, a timeout, or a retryable server error (5xx) before any output reached the
  caller: once more on a fresh socket, then HTTP. Any other transport failure before output:
  HTTP.
* After a fallback, the session uses HTTP for a cool-down (60 s by default) before trying the
  socket again. Each fallback is logged once, at WARNING, on the ``openai_ws`` logger.
* ``previous_response_not_found`` or ``websocket_connection_limit_reached`` before output: the
  whole conversation is sent once more (on a new socket for the latter).
* 429 before output: one retry after the delay the server asks for (up to 20 s).
* After output reached the caller, nothing is ever sent again: the stream ends with ``error``.

``websocket`` mode uses the same recovery on the socket but never falls back: its failures end
the stream with ``error``; after a final close (1000, 1008, 4xxx) or a spent reconnection
budget, the session's next turn opens a new socket. ``sse`` mode uses HTTP only. Every retry
and fallback is counted in :attr:`StreamResponse.attempts`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any, Final, Literal

from .events import Done, Error, MessageBuilder, StreamEvent, TextDelta
from .exceptions import (
    APIError,
    ConnectError,
    ConnectionClosed,
    ConnectionLimitReached,
    OpenAIWSError,
    PreviousResponseNotFound,
    RateLimitError,
    StreamTimeout,
)
from .messages import AssistantMessage, ModelInfo
from .options import StreamOptions

if TYPE_CHECKING:
    from .client import Client
    from .sessions import Session

__all__ = ["StreamResponse"]

logger = logging.getLogger("openai_ws")

JSONDict = dict[str, Any]

#: The longest server-requested wait before a 429 is retried; longer ones surface at once.
MAX_RATE_LIMIT_WAIT: Final = 20.0

_Action = Literal["retry", "fresh_socket", "http", "fail"]


class StreamResponse(Iterator[StreamEvent]):
    """The events of one turn, as they arrive; ends with one ``done`` or ``error`` event.

    Nothing is sent until the first ``next()``. Reading it to the end, :meth:`close`, a
    ``with`` block, or dropping it all end the turn; leaving before the end abandons the
    response (it is cancelled, and the next turn of the session sends the whole conversation).

    Attributes:
        transport: ``"websocket"`` or ``"sse"``: what carried the response (None before).
        response_id: the ``resp_...`` id, once known.
        request_id: the HTTP ``x-request-id``, when HTTP carried it.
        attempts: every try, in order, as ``"websocket"``/``"sse"`` with what ended it
            (``"websocket: ConnectError"``, ``"sse: done"``...).
        final: the ``done`` or ``error`` event, once it arrived.
    """

    def __init__(
        self,
        client: Client,
        session: Session,
        *,
        model: ModelInfo,
        request: JSONDict,
        options: StreamOptions,
        policy: str,
        one_off: bool,
    ) -> None:
        self._client = client
        self._session = session
        self._model = model
        self._request = request
        self._options = options
        self._policy = policy
        self._one_off = one_off
        self._aborted = threading.Event()
        self._current: Any = None  # the transport's event iterator in use
        self._turn_open = False
        self._output = False
        self.transport: str | None = None
        self.response_id: str | None = None
        self.request_id: str | None = None
        self.attempts: list[str] = []
        self.final: Done | Error | None = None
        self._events: Generator[StreamEvent, None, None] = self._run()

    def __repr__(self) -> str:
        return f"<StreamResponse model={self._model.id!r} transport={self.transport!r}>"

    # -- iteration -------------------------------------------------------------------------

    def __iter__(self) -> StreamResponse:
        return self

    def __next__(self) -> StreamEvent:
        return next(self._events)

    def result(self) -> AssistantMessage:
        """Read the stream to its end and return the assistant message.

        Raises:
            OpenAIWSError: the typed exception of the ``error`` event.
        """
        for _ in self:
            pass
        final = self.final
        if isinstance(final, Done):
            return final.message
        if isinstance(final, Error):
            raise final.exception or OpenAIWSError(final.error.error_message or "the stream failed")
        raise OpenAIWSError("the stream was closed before it ended")

    @property
    def text_stream(self) -> Iterator[str]:
        """The answer's text deltas only (text marked ``commentary`` is left out, as it is
        from :attr:`AssistantMessage.text <openai_ws.AssistantMessage.text>`)."""
        for event in self:
            if isinstance(event, TextDelta) and not event.commentary:
                yield event.delta

    def close(self) -> None:
        """Abandon the turn if it has not ended; safe from any thread (a consumer blocked in
        another thread gets an ``error`` event with reason ``"aborted"``). Idempotent."""
        try:
            self._events.close()
        except ValueError:  # the generator is running in another thread: wake it up
            self._aborted.set()
            current = self._current
            if current is not None:
                with contextlib.suppress(Exception):
                    current.close()

    def __enter__(self) -> StreamResponse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the turn --------------------------------------------------------------------------

    def _run(self) -> Generator[StreamEvent, None, None]:
        session = self._session
        session.begin_turn()
        self._turn_open = True
        try:
            for event in self._attempts():
                if isinstance(event, (Done, Error)):
                    self.final = event
                    self._end_turn(success=isinstance(event, Done))
                yield event
        finally:
            if self._turn_open:  # left before the end: abandon
                self._end_turn(success=False)

    def _end_turn(self, *, success: bool) -> None:
        if not self._turn_open:
            return
        self._turn_open = False
        current, self._current = self._current, None
        if current is not None:
            with contextlib.suppress(Exception):
                current.close()
        session = self._session
        if not success:
            session.forget()
        session.end_turn()
        if self._one_off:
            session.close()

    def _payload(self, body: JSONDict) -> JSONDict:
        hook = self._options.on_payload
        if hook is None:
            return body
        replaced = hook(dict(body))
        if replaced is None:
            return body
        if not isinstance(replaced, dict):
            raise TypeError(f"on_payload must return a dict or None, got {type(replaced).__name__}")
        return replaced

    def _timeout(self) -> float | None:
        return self._options.timeout if self._options.timeout is not None else self._client.timeout

    def _open(self, use_http: bool, full: bool) -> Any:
        """Send the request over one transport and return its event iterator."""
        session, request = self._session, self._request
        timeout = self._timeout()
        if use_http:
            plan = session.plan(request, "sse")
            body = request if full else plan.payload
            return self._client._http().create(
                self._payload(body),
                timeout=(self._client.connect_timeout, timeout),
                headers=dict(self._options.headers) if self._options.headers else None,
            )
        connection = session.connection()
        connection.ensure_connected()
        if (
            self._options.warm_up
            and not full
            and connection.previous_response_id is None
            and session.chain.response_id is None
        ):
            warm = {k: v for k, v in request.items() if k != "input"}
            warm_id = connection.warm_up(**warm, timeout=timeout or 30.0)
            session.remember_warm_up({**warm, "input": [], "generate": False}, warm_id)
        plan = session.plan(request, "websocket", connection)
        body = request if full else plan.payload
        return connection.create(self._payload(body), timeout=timeout)

    def _attempts(self) -> Iterator[StreamEvent]:
        session = self._session
        policy = self._policy
        use_http = policy == "sse" or (policy == "auto" and session.in_cooldown)
        full = False
        tried: set[str] = set()
        started = False
        while True:
            name = "sse" if use_http else "websocket"
            self.transport = name
            builder = MessageBuilder(self._model)
            failure: OpenAIWSError | None = None
            try:
                stream = self._open(use_http, full)
            except OpenAIWSError as exc:
                failure = exc
            else:
                self._current = stream
                try:
                    for server_event in stream:
                        if self.response_id is None:
                            self.response_id = getattr(stream, "response_id", None)
                        self.request_id = getattr(stream, "request_id", None)
                        if not started:
                            started = True
                            yield builder.start(server_event)
                        for event in builder.feed(server_event):
                            if isinstance(event, Error) and not self._output:
                                failure = event.exception  # maybe retried below
                                break
                            if isinstance(event, Done):
                                self.attempts.append(f"{name}: done")
                                self.response_id = builder.response_id
                                session.remember(self._request, builder.accumulator.response, name)
                                yield event
                                return
                            if isinstance(event, Error):
                                self.attempts.append(f"{name}: {type(event.exception).__name__}")
                                yield event
                                return
                            self._output = True
                            yield event
                        if failure is not None:
                            break
                    else:
                        failure = ConnectionClosed("the response ended without a terminal event")
                except OpenAIWSError as exc:
                    failure = exc
                except Exception as exc:
                    if not self._aborted.is_set():
                        raise
                    failure = ConnectionClosed(f"closed by the caller ({type(exc).__name__})")
                finally:
                    with contextlib.suppress(Exception):
                        stream.close()
                    self._current = None
            assert failure is not None
            self.attempts.append(f"{name}: {type(failure).__name__}")
            session.forget()  # whatever happens next, the chain is broken
            if self._aborted.is_set():
                yield builder.fail(failure, aborted=True)
                return
            if self._output:
                yield builder.fail(failure)  # output reached the caller: never replay
                return
            action = self._decide(failure, name, tried)
            if action == "fail":
                yield builder.fail(failure)
                return
            full = True  # a failed turn evicts the cache: the retry sends everything
            if action == "http":
                if not use_http:
                    self._fall_back(failure)
                use_http = True
            elif action == "fresh_socket":
                session.drop_connection()
            if isinstance(failure, RateLimitError):
                wait = failure.retry_after if failure.retry_after is not None else 1.0
                if self._aborted.wait(wait):
                    yield builder.fail(failure, aborted=True)
                    return

    def _decide(self, failure: OpenAIWSError, transport: str, tried: set[str]) -> _Action:
        """What to do after *failure*, which came before any output; *tried* remembers which
        one-time remedies were used."""
        websocket = transport == "websocket"
        give_up: _Action = "http" if self._policy == "auto" and websocket else "fail"

        def once(kind: str, action: _Action) -> _Action:
            if kind in tried:
                return give_up
            tried.add(kind)
            return action

        if isinstance(failure, ConnectionLimitReached):
            return once("resend", "fresh_socket" if websocket else "retry")
        if isinstance(failure, PreviousResponseNotFound):
            return once("resend", "retry")
        if isinstance(failure, RateLimitError):
            wait = failure.retry_after or 0.0
            if failure.retryable and wait <= MAX_RATE_LIMIT_WAIT and "rate" not in tried:
                tried.add("rate")
                return "retry"
            return "fail"  # another transport would be limited just the same
        if isinstance(failure, APIError):
            if not failure.retryable:
                return "fail"
            return once(f"{transport} retry", "fresh_socket" if websocket else "retry")
        if websocket and isinstance(failure, ConnectError):
            return give_up  # no WebSocket here, or none reachable: HTTP at once
        if (
            isinstance(failure, (ConnectionClosed, StreamTimeout, ConnectError))
            and failure.retryable
        ):
            return once(f"{transport} retry", "fresh_socket" if websocket else "retry")
        return give_up  # a protocol error, a final close code, a TLS failure...

    def _fall_back(self, failure: OpenAIWSError) -> None:
        session = self._session
        session.use_http_for_a_while()
        session.drop_connection()
        logger.warning(
            "session %s: WebSocket mode failed (%s: %s); using HTTP streaming for the next %gs",
            session.id or "(one-off)",
            type(failure).__name__,
            failure,
            session.cooldown,
        )
