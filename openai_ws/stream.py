"""One turn: the blocking iterator :meth:`Client.stream() <openai_ws.Client.stream>` returns.

:class:`StreamResponse` runs the turn when first iterated: it waits for the session's previous
turn, picks the transport, plans a delta or a full request, sends it, and turns the server
events into stream events (:mod:`openai_ws.events`). It ends with exactly one ``done`` or
``error`` event; iterating never raises for API or transport failures.

The transport rules (``auto``):

* WebSocket first. A refused upgrade, a failed connection, or a socket that stays silent after
  the request (``first_event_timeout``): HTTP at once. A handshake refused with 401 or 403 is
  an :class:`~openai_ws.exceptions.AuthenticationError`: no fallback with the same key.
* A retryable drop, an idle timeout, or a retryable server error (5xx) before any output
  reached the caller: once more on a fresh socket, then HTTP. Any other transport failure
  before output: HTTP.
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

The turn's ``timeout`` is one budget for waiting, shared by every attempt: connecting, backoff
sleeps, response headers, the first event and each gap between events all come out of it, and
each event that arrives gives it back. A server that stalls every attempt ends the turn with
:class:`~openai_ws.exceptions.StreamTimeout` after about ``timeout`` seconds in every mode,
retries and fallback included.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any, Final, Literal

from .events import (
    Done,
    Error,
    MessageBuilder,
    Start,
    StreamEvent,
    TextDelta,
)
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
from .telemetry import StatsObserver, TurnObserver, TurnStats
from .transports._common import Deadline
from .transports.base import ResponseStream

if TYPE_CHECKING:
    from .sessions import Session

__all__ = ["StreamResponse"]

logger = logging.getLogger("openai_ws")

JSONDict = dict[str, Any]

#: The longest server-requested wait before a 429 is retried; longer ones surface at once.
MAX_RATE_LIMIT_WAIT: Final = 20.0

_Action = Literal["retry", "fresh_socket", "http", "fail"]
_NO_OBSERVER: Final = TurnObserver()
_FINAL: Final = (Done, Error)


class StreamResponse(Iterator[StreamEvent]):
    """The events of one turn, as they arrive; ends with one ``done`` or ``error`` event.

    Nothing is sent until the first ``next()``. Reading it to the end, :meth:`close`, a
    ``with`` block, or dropping it (leaving a ``for`` loop by ``break`` drops it) all end the
    turn at once; leaving before the end abandons the response (it is cancelled, and the next
    turn of the session sends the whole conversation). Starting the session's next turn in the
    same thread abandons a turn that is still open there. Like any iterator, once it has ended
    it yields nothing more: :attr:`final` keeps the last event.

    Attributes:
        transport: ``"websocket"`` or ``"sse"``: what carried the response (None before).
        response_id: the ``resp_...`` id, once known.
        request_id: the HTTP ``x-request-id``, when HTTP carried it.
        attempts: every try, in order, as ``"websocket"``/``"sse"`` with what ended it
            (``"websocket: ConnectError"``, ``"sse: done"``...).
        final: the ``done`` or ``error`` event, once it arrived.
        stats: what the turn cost (:class:`~openai_ws.TurnStats`), once it ended.
    """

    def __init__(
        self,
        session: Session,
        *,
        model: ModelInfo,
        request: JSONDict,
        options: StreamOptions,
        policy: str,
        one_off: bool,
        timeout: float | None,
        first_event_timeout: float | None = None,
        observer: TurnObserver | None = None,
    ) -> None:
        # The turn lives in its own object, which does not point back here: a StreamResponse
        # the caller drops is freed at once (not by the cycle collector), and its __del__ ends
        # the turn.
        if observer is None:
            observer = StatsObserver(session, policy=policy)
        self._observer = observer
        self._turn = _Turn(
            session,
            model=model,
            request=request,
            options=options,
            policy=policy,
            one_off=one_off,
            timeout=timeout,
            first_event_timeout=first_event_timeout,
            observer=observer,
        )
        self._events: Generator[StreamEvent, None, None] = self._turn.run()
        if isinstance(observer, StatsObserver):  # stats (and spans) from the first next()
            self._events = observer.wrap(self._events)
        self._turn.generator = weakref.ref(self._events)

    def __repr__(self) -> str:
        return f"<StreamResponse model={self._turn.model.id!r} transport={self.transport!r}>"

    @property
    def transport(self) -> str | None:
        return self._turn.transport

    @property
    def response_id(self) -> str | None:
        return self._turn.response_id

    @property
    def request_id(self) -> str | None:
        return self._turn.request_id

    @property
    def attempts(self) -> list[str]:
        return self._turn.attempts

    @property
    def final(self) -> Done | Error | None:
        return self._turn.final

    @property
    def stats(self) -> TurnStats | None:
        observer = self._observer
        return observer.stats if isinstance(observer, StatsObserver) else None

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
        """Abandon the turn if it has not ended; safe from any thread, at any stage (waiting
        for the session, connecting, waiting for headers or events): a consumer blocked in
        another thread gets an ``error`` event with reason ``"aborted"`` at once. Idempotent."""
        try:
            self._events.close()
        except ValueError:  # the generator is running in another thread: wake it up
            self._turn.abort()
        else:
            if isinstance(self._observer, StatsObserver):
                self._observer.finish()  # closed before it started: stats of nothing

    def __enter__(self) -> StreamResponse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


class _Turn:
    """One turn's state and logic: the pure retry/fallback policy (:meth:`_decide`) driving
    the session's transports through the :class:`~openai_ws.transports.base.Transport` seam."""

    def __init__(
        self,
        session: Session,
        *,
        model: ModelInfo,
        request: JSONDict,
        options: StreamOptions,
        policy: str,
        one_off: bool,
        timeout: float | None,
        first_event_timeout: float | None,
        observer: TurnObserver,
    ) -> None:
        self.session = session
        self.model = model
        self.request = request
        self.options = options
        self.policy = policy
        self.one_off = one_off
        self.timeout = timeout
        self.first_event_timeout = first_event_timeout
        self.observer = observer
        self.deadline = Deadline(timeout)  # restarted when the turn starts running
        self.output = False  # some output reached the caller: never replay
        self.open = False
        self.transport: str | None = None
        self.response_id: str | None = None
        self.request_id: str | None = None
        self.attempts: list[str] = []
        self.final: Done | Error | None = None
        self.generator: weakref.ref[Generator[StreamEvent, None, None]] | None = None

    def abort(self) -> None:
        """Cut the turn short from another thread (wakes every wait)."""
        self.deadline.cancel()

    # -- running ---------------------------------------------------------------------------

    def run(self) -> Generator[StreamEvent, None, None]:
        session = self.session
        self.deadline.restart()  # the budget starts when the caller starts reading
        try:
            session.begin_turn(self.deadline, self.abort_here)
        except OpenAIWSError as exc:  # iterating never raises: the turn ends with error
            self.final = MessageBuilder(self.model).fail(exc, aborted=self.deadline.cancelled)
            self._report("turn_ended", self.final)
            yield self.final
            return
        self.open = True
        try:
            for event in self._events_of_attempts():
                if isinstance(event, (Done, Error)):
                    self.final = event
                    self._report("turn_ended", event)
                    self._end_turn(success=isinstance(event, Done))
                yield event
        finally:
            if self.open:  # left before the end: abandon
                self._end_turn(success=False)

    def abort_here(self) -> None:
        """Abandon the turn from the thread that owns it (the session's next turn does, when
        this one was left open in the same thread): its generator is closed, so it can never
        touch the session again."""
        generator = self.generator() if self.generator is not None else None
        if generator is not None:
            with contextlib.suppress(ValueError):  # ValueError: running (not in this thread)
                generator.close()
        self.deadline.cancel()
        self._end_turn(success=False)

    def _end_turn(self, *, success: bool) -> None:
        if not self.open:
            return
        self.open = False
        session = self.session
        if not success:
            self.deadline.cancel()  # closes the response stream in flight, if any
            session.forget()
        session.end_turn()
        if self.one_off:
            session.close()

    def _report(self, what: str, *args: Any, **kwargs: Any) -> None:
        try:
            getattr(self.observer, what)(*args, **kwargs)
        except Exception:
            logger.exception("openai_ws: a turn observer failed in %s", what)

    def _payload(self, body: JSONDict) -> JSONDict:
        hook = self.options.on_payload
        if hook is None:
            return body
        replaced = hook(dict(body))
        if replaced is None:
            return body
        if not isinstance(replaced, dict):
            raise TypeError(f"on_payload must return a dict or None, got {type(replaced).__name__}")
        return replaced

    def _open(self, kind: str, full: bool, retry_reason: str | None) -> ResponseStream:
        """Send the request over one transport and return its response stream."""
        session, request, deadline = self.session, self.request, self.deadline
        transport = session.transport(kind)
        transport.prepare(deadline)
        if (
            kind == "websocket"
            and self.options.warm_up
            and not full
            and transport.cached_response_id is None
            and session.chain.response_id is None
        ):
            wait = deadline.limit(None)
            session.warm_up(request, timeout=wait if wait is not None else 30.0)
        plan = session.plan(request, transport)
        body = request if full else plan.payload
        chained = body.get("previous_response_id")
        self._report("attempt_started", kind, full=chained is None, retry_reason=retry_reason)
        headers = dict(self.options.headers) if self.options.headers else None
        stream = transport.open(
            self._payload(body),
            deadline,
            headers=headers,
            first_event_timeout=self.first_event_timeout,
        )
        items = body.get("input")
        self._report(
            "request_sent",
            stream,
            input_items=len(items) if isinstance(items, list) else 0,
            full=chained is None,
            previous_response_id=chained,
        )
        return stream

    def _events_of_attempts(self) -> Iterator[StreamEvent]:
        """The stream events of the turn: each attempt's, then the retry/fallback decision."""
        session = self.session
        policy = self.policy
        use_http = policy == "sse" or (policy == "auto" and session.in_cooldown)
        full = False
        tried: set[str] = set()
        started = False
        retry_reason: str | None = None
        tools = self.request.get("tools")
        while True:
            name = "sse" if use_http else "websocket"
            self.transport = name
            builder = MessageBuilder(self.model, tools=tools)
            failure: OpenAIWSError | None = None
            stream: ResponseStream | None = None
            try:
                stream = self._open(name, full, retry_reason)
            except OpenAIWSError as exc:
                failure = exc
            else:
                try:
                    for server_event in stream:
                        if not started:
                            started = True
                            yield builder.start(server_event)
                        for event in builder.feed(server_event):
                            if not isinstance(event, _FINAL):  # the common case first
                                if not self.output:
                                    self.output = True
                                    self._note(stream)
                                    if not isinstance(event, Start):
                                        self._report("first_content")
                                yield event
                                continue
                            if isinstance(event, Error) and not self.output:
                                failure = event.exception  # maybe retried below
                                break
                            if isinstance(event, Done):
                                self._note(stream)
                                self.attempts.append(f"{name}: done")
                                self._report("attempt_ended", name, "done", stream)
                                self.response_id = builder.response_id
                                session.remember(
                                    self.request,
                                    builder.final_response or builder.accumulator.response,
                                    event.message,
                                )
                                yield event
                                return
                            if isinstance(event, Error):
                                self._note(stream)
                                outcome = type(event.exception).__name__
                                self.attempts.append(f"{name}: {outcome}")
                                self._report("attempt_ended", name, outcome, stream)
                                yield event
                                return
                        if failure is not None:
                            break
                    else:
                        failure = ConnectionClosed("the response ended without a terminal event")
                except OpenAIWSError as exc:
                    failure = exc
                except Exception as exc:
                    if not self.deadline.cancelled:
                        raise
                    # close() from another thread can break a read in odd ways
                    failure = ConnectionClosed(f"closed by the caller ({type(exc).__name__})")
                finally:
                    stream.close()
                self._note(stream)
            outcome = type(failure).__name__
            self.attempts.append(f"{name}: {outcome}")
            self._report("attempt_ended", name, outcome, stream)
            session.forget()  # whatever happens next, the chain is broken
            if self.deadline.cancelled:
                yield builder.fail(failure, aborted=True)
                return
            if self.output:
                yield builder.fail(failure)  # output reached the caller: never replay
                return
            action = self._decide(failure, name, tried)
            if action != "fail" and self.deadline.expired():
                action = "fail"  # the turn's budget is spent: no retry, no fallback
                if not isinstance(failure, StreamTimeout):
                    failure = StreamTimeout(
                        f"the turn's timeout ({self.timeout:g}s) ran out ({outcome}: {failure})",
                        timeout=self.timeout,
                        phase="turn",
                    )
            if action == "fail":
                yield builder.fail(failure)
                return
            full = True  # a failed turn evicts the cache: the retry sends everything
            retry_reason = outcome
            if action == "http":
                if not use_http:
                    self._fall_back(failure)
                use_http = True
            elif action == "fresh_socket":
                session.drop_connection()
            if isinstance(failure, RateLimitError):
                wait = failure.retry_after if failure.retry_after is not None else 1.0
                left = self.deadline.remaining()
                if left is not None and wait > left:
                    yield builder.fail(failure)  # waiting would outlast the turn's timeout
                    return
                if self.deadline.sleep(wait):
                    yield builder.fail(failure, aborted=True)
                    return

    def _note(self, stream: ResponseStream | None) -> None:
        """Take what the transport learned about the response."""
        if stream is None:
            return
        if self.response_id is None:
            self.response_id = stream.response_id
        self.request_id = stream.request_id

    def _decide(self, failure: OpenAIWSError, transport: str, tried: set[str]) -> _Action:
        """What to do after *failure*, which came before any output; *tried* remembers which
        one-time remedies were used."""
        websocket = transport == "websocket"
        give_up: _Action = "http" if self.policy == "auto" and websocket else "fail"

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
                return "fail"  # includes a handshake refused for the key: HTTP has the same key
            return once(f"{transport} retry", "fresh_socket" if websocket else "retry")
        if websocket and isinstance(failure, ConnectError):
            return give_up  # no WebSocket here, or none reachable: HTTP at once
        if (
            websocket
            and self.policy == "auto"
            and isinstance(failure, StreamTimeout)
            and failure.phase == "first_event"
        ):
            return "http"  # a socket that upgraded and then says nothing: HTTP, not a second
        if (
            isinstance(failure, (ConnectionClosed, StreamTimeout, ConnectError))
            and failure.retryable
        ):
            return once(f"{transport} retry", "fresh_socket" if websocket else "retry")
        return give_up  # a protocol error, a final close code, a TLS failure...

    def _fall_back(self, failure: OpenAIWSError) -> None:
        session = self.session
        session.use_http_for_a_while()
        session.drop_connection()
        logger.warning(
            "session %s: WebSocket mode failed (%s: %s); using HTTP streaming for the next %gs",
            session.id or "(one-off)",
            type(failure).__name__,
            failure,
            session.cooldown,
        )
