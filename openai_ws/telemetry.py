"""What a turn reports as it runs: :class:`TurnStats`, and OpenTelemetry traces and metrics.

:class:`~openai_ws.stream.StreamResponse` reports a few facts to a :class:`TurnObserver`: an
attempt started (over which transport, a full request or a delta), the request was sent, the
attempt ended (and why), the first content reached the caller, the turn ended. It never
touches spans or counters itself; observers do. The base class does nothing.

Every turn a :class:`~openai_ws.Client` runs has a :class:`StatsObserver`, which fills
:attr:`StreamResponse.stats <openai_ws.StreamResponse.stats>`: a handful of calls per attempt,
none per event. When OpenTelemetry is in use (a tracer or meter provider passed to the client,
or set globally by the application), the observer also makes one span per turn and records
the GenAI client metrics. ``opentelemetry`` is never imported by this module unless the
application imported it (or passed a provider): without it a turn pays one dictionary lookup.

What is recorded holds no prompt, no output and no key: model names, ids, counts, sizes,
durations and the names of error types only.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import urllib.parse
from collections.abc import Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .events import Done, Error

if TYPE_CHECKING:
    from .events import StreamEvent
    from .sessions import Session
    from .transports.base import ResponseStream

__all__ = ["StatsObserver", "Telemetry", "TurnObserver", "TurnStats"]

logger = logging.getLogger("openai_ws")


class TurnObserver:
    """Receives the facts of one turn, in order. Every method is a no-op here: subclass it and
    override what you need. Called from the thread that iterates the turn; an observer must
    not raise (what it raises is logged and ignored)."""

    def attempt_started(self, transport: str, *, full: bool, retry_reason: str | None) -> None:
        """An attempt is about to send over *transport*; *retry_reason* names what ended the
        previous attempt (None for the first). An attempt that fails while connecting reports
        only :meth:`attempt_ended`."""

    def request_sent(
        self,
        stream: ResponseStream,
        *,
        input_items: int,
        full: bool,
        previous_response_id: str | None = None,
    ) -> None:
        """The request went out; *stream* will carry its events (its ``bytes_sent`` is set,
        its ``bytes_received`` grows). *full*: it sent the whole conversation (it did not
        chain); *previous_response_id*: what it chained from."""

    def first_content(self) -> None:
        """The first text, thinking or tool-call event is about to reach the caller."""

    def attempt_ended(self, transport: str, outcome: str, stream: ResponseStream | None) -> None:
        """The attempt over *transport* ended: *outcome* is ``"done"`` or the name of the
        exception that ended it; *stream* is None when nothing was sent."""

    def turn_ended(self, final: Done | Error) -> None:
        """The turn's last event is about to reach the caller."""


@attrs.frozen
class TurnStats:
    """What one turn cost, in :attr:`StreamResponse.stats <openai_ws.StreamResponse.stats>`
    once it ended (however it ended: done, error, or abandoned by the caller).

    Attributes:
        transport: ``"websocket"`` or ``"sse"``: what carried the last attempt (None when the
            turn ended before any attempt, e.g. closed before it started).
        attempts: how many requests were tried (1 when nothing was retried; 0 when none).
        ttft_s: seconds from the first ``next()`` to the first text, thinking or tool-call
            event (None when there was none).
        duration_s: seconds from the first ``next()`` to the end of the turn.
        bytes_sent: the request bytes of every attempt (WebSocket frames or HTTP bodies).
        bytes_received: the response bytes of every attempt.
        input_items_sent: the input items of the last request sent (the delta when it
            chained, the whole conversation when not).
        full_request: whether the last request sent the whole conversation (did not chain).
        previous_response_id: what the last request chained from (None for a full request).
        socket_reused: whether a WebSocket request of this turn went out on a socket that was
            already open before the turn (no handshake paid).
        fallback: why the turn fell back from WebSocket to HTTP (the name of the error that
            ended the WebSocket attempt, e.g. ``"ConnectError"``), or None.
    """

    transport: str | None
    attempts: int
    ttft_s: float | None
    duration_s: float
    bytes_sent: int
    bytes_received: int
    input_items_sent: int
    full_request: bool
    previous_response_id: str | None
    socket_reused: bool
    fallback: str | None

    def __str__(self) -> str:
        """A one-line summary, for people (``repr()`` gives every field)."""

        def plural(count: int, noun: str) -> str:
            return f"{count} {noun}{'' if count == 1 else 's'}"

        parts = [self.transport or "nothing sent", plural(self.attempts, "attempt")]
        if self.ttft_s is not None:
            parts.append(f"first content after {self.ttft_s * 1000:.1f} ms")
        parts.append(f"{self.duration_s * 1000:.1f} ms in all")
        parts.append(f"{self.bytes_sent:,} B sent, {self.bytes_received:,} B received")
        how = "full request" if self.full_request else "chained"
        parts.append(f"{plural(self.input_items_sent, 'input item')} ({how})")
        if self.transport == "websocket" or self.socket_reused:
            parts.append("socket reused" if self.socket_reused else "new socket")
        if self.fallback is not None:
            parts.append(f"fell back to HTTP after {self.fallback}")
        return ", ".join(parts)


class StatsObserver(TurnObserver):
    """Collects one turn's :class:`TurnStats` (in :attr:`stats` once the turn ended).

    One per turn; the turn reports from one thread at a time, so it needs no lock.

    Args:
        session: the turn's session, to tell whether its socket was open before the turn.
        policy: the turn's transport policy (``"auto"``, ``"websocket"``, ``"sse"``).
    """

    def __init__(self, session: Session | None = None, *, policy: str = "auto") -> None:
        self.stats: TurnStats | None = None
        self.final: Done | Error | None = None
        self._session = session
        self._policy = policy
        self._started: float | None = None
        self._ttft: float | None = None
        self._transport: str | None = None
        self._attempts = 0
        self._attempting = False  # between attempt_started and attempt_ended
        self._sent = 0
        self._received = 0
        self._items = 0
        self._full = False
        self._previous: str | None = None
        self._reused = False
        self._fallback: str | None = None
        self._in_flight: ResponseStream | None = None
        self._last: ResponseStream | None = None
        self._socket: tuple[object, int] | None = None  # (connection, connections_opened)

    @property
    def response_id(self) -> str | None:
        """The last attempt's response id, once the server said it."""
        return self._last.response_id if self._last is not None else None

    # -- the turn's life -------------------------------------------------------------------

    def wrap(self, events: Iterator[StreamEvent]) -> Generator[StreamEvent, None, None]:
        """The turn's events, with :meth:`begin` before the first and :meth:`finish` after the
        last (or when the caller abandons them)."""
        self._guarded(self.begin)
        try:
            yield from events
        finally:
            self._guarded(self.finish)

    def begin(self) -> None:
        """The turn starts running (its first ``next()``)."""
        self._started = time.perf_counter()
        session = self._session
        if session is not None and (
            self._policy == "websocket" or (self._policy == "auto" and not session.in_cooldown)
        ):
            connection = session.current_connection()  # none yet: not a reused socket
            if connection is not None:
                self._socket = (connection, connection.connections_opened)

    def finish(self) -> TurnStats:
        """End the statistics (idempotent): the turn ended, or was abandoned."""
        if self.stats is not None:
            return self.stats
        self._settle()
        started = self._started
        self.stats = stats = TurnStats(
            transport=self._transport,
            attempts=self._attempts,
            ttft_s=self._ttft,
            duration_s=0.0 if started is None else time.perf_counter() - started,
            bytes_sent=self._sent,
            bytes_received=self._received,
            input_items_sent=self._items,
            full_request=self._full,
            previous_response_id=self._previous,
            socket_reused=self._reused,
            fallback=self._fallback,
        )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("turn %s: %s", self.response_id or "(no response)", stats)
        return stats

    @staticmethod
    def _guarded(step: Any) -> None:
        try:
            step()
        except Exception:
            logger.exception("openai_ws: a turn observer failed")

    def _settle(self) -> None:
        """Count the bytes of the attempt in flight (it ended)."""
        stream, self._in_flight = self._in_flight, None
        if stream is not None:
            self._sent += stream.bytes_sent
            self._received += stream.bytes_received

    # -- the facts -------------------------------------------------------------------------

    def attempt_started(self, transport: str, *, full: bool, retry_reason: str | None) -> None:
        if self._started is None:
            self.begin()
        if retry_reason is not None and (self._transport, transport) == ("websocket", "sse"):
            self._fallback = retry_reason
        self._attempts += 1
        self._attempting = True
        self._transport = transport

    def request_sent(
        self,
        stream: ResponseStream,
        *,
        input_items: int,
        full: bool,
        previous_response_id: str | None = None,
    ) -> None:
        self._in_flight = self._last = stream
        self._items = input_items
        self._full = full
        self._previous = previous_response_id
        if stream.transport == "websocket" and self._socket is not None and not self._reused:
            before, opened = self._socket
            session = self._session
            if session is not None and opened > 0:
                connection = session.current_connection()  # never makes one (max_sockets)
                self._reused = (
                    connection is before
                    and connection is not None
                    and connection.connections_opened == opened
                )

    def first_content(self) -> None:
        if self._ttft is None and self._started is not None:
            self._ttft = time.perf_counter() - self._started

    def attempt_ended(self, transport: str, outcome: str, stream: ResponseStream | None) -> None:
        if not self._attempting:  # it failed while connecting, before it could start
            self._attempts += 1
        self._attempting = False
        self._transport = transport
        self._settle()

    def turn_ended(self, final: Done | Error) -> None:
        self.final = final
        self.finish()


# -- OpenTelemetry ------------------------------------------------------------------------------

#: Histogram buckets the GenAI semantic conventions advise.
_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                     40.96, 81.92)  # fmt: skip
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                  16777216, 67108864)  # fmt: skip


class _Otel:
    """The OpenTelemetry objects for one (tracer provider, meter provider) pair."""

    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        from opentelemetry import context, trace

        from ._version import __version__

        self.context = context
        self.trace = trace
        self.tracer = tracer_provider.get_tracer("openai_ws", __version__)
        meter = meter_provider.get_meter("openai_ws", __version__)
        self.duration = _histogram(
            meter,
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration",
            buckets=_DURATION_BUCKETS,
        )
        self.tokens = _histogram(
            meter,
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Measures number of input and output tokens used",
            buckets=_TOKEN_BUCKETS,
        )
        self.fallbacks = meter.create_counter(
            "openai_ws.fallbacks",
            unit="{fallback}",
            description="Turns that fell back from WebSocket mode to HTTP streaming, by reason",
        )
        self.provider_name = _conventions_have_provider_name()


def _histogram(meter: Any, name: str, *, unit: str, description: str, buckets: Any) -> Any:
    try:
        return meter.create_histogram(
            name, unit=unit, description=description, explicit_bucket_boundaries_advisory=buckets
        )
    except TypeError:  # an opentelemetry-api older than 1.23
        return meter.create_histogram(name, unit=unit, description=description)


def _conventions_have_provider_name() -> bool:
    """Whether the installed semantic conventions define ``gen_ai.provider.name`` (newer ones
    replace ``gen_ai.system`` with it)."""
    try:
        from opentelemetry.semconv._incubating.attributes import gen_ai_attributes
    except ImportError:
        return False
    return hasattr(gen_ai_attributes, "GEN_AI_PROVIDER_NAME")


def _is_noop(provider: Any, proxy_names: tuple[str, ...]) -> bool:
    """A provider that records nothing: the API's no-op one, or the global proxy before the
    application set a real one."""
    return type(provider).__name__ in proxy_names


_NOOP_TRACERS = ("ProxyTracerProvider", "NoOpTracerProvider")
_NOOP_METERS = ("_ProxyMeterProvider", "NoOpMeterProvider")


class Telemetry:
    """A client's telemetry: makes each turn's observer. Thread-safe.

    Args:
        tracer_provider: an OpenTelemetry ``TracerProvider``; None: the global one, once the
            application set it.
        meter_provider: an OpenTelemetry ``MeterProvider``; None: the global one, likewise.
        server_url: the API's URL (its host and port become ``server.address`` and
            ``server.port``).
    """

    def __init__(
        self, tracer_provider: Any = None, meter_provider: Any = None, *, server_url: str = ""
    ) -> None:
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        parsed = urllib.parse.urlsplit(server_url)
        self._server: dict[str, Any] = {}
        if parsed.hostname:
            self._server["server.address"] = parsed.hostname
            if parsed.port is not None:
                self._server["server.port"] = parsed.port
        self._lock = threading.Lock()
        self._cached: tuple[Any, Any, _Otel] | None = None

    def observer(self, session: Session | None, *, model: str, policy: str) -> StatsObserver:
        """The observer of one turn (made when the turn is made, in the caller's context)."""
        otel = self._otel()
        if otel is None:
            return StatsObserver(session, policy=policy)
        return _TracingObserver(session, policy=policy, otel=otel, model=model, server=self._server)

    def _otel(self) -> _Otel | None:
        tracer_provider, meter_provider = self._tracer_provider, self._meter_provider
        if tracer_provider is None or meter_provider is None:
            # no global provider is set unless the application imported opentelemetry: then
            # nothing is imported here, and a turn pays these two lookups
            modules = sys.modules
            if (
                tracer_provider is None
                and meter_provider is None
                and "opentelemetry.trace" not in modules
                and "opentelemetry.metrics" not in modules
            ):
                return None
            from opentelemetry import metrics, trace

            if tracer_provider is None:
                tracer_provider = trace.get_tracer_provider()
            if meter_provider is None:
                meter_provider = metrics.get_meter_provider()
        if _is_noop(tracer_provider, _NOOP_TRACERS) and _is_noop(meter_provider, _NOOP_METERS):
            return None
        with self._lock:
            cached = self._cached
            if (
                cached is None
                or cached[0] is not tracer_provider
                or cached[1] is not meter_provider
            ):
                cached = (tracer_provider, meter_provider, _Otel(tracer_provider, meter_provider))
                self._cached = cached
            return cached[2]


class _TracingObserver(StatsObserver):
    """Stats, plus one span per turn (current while the turn runs) and the GenAI metrics."""

    def __init__(
        self,
        session: Session | None,
        *,
        policy: str,
        otel: _Otel,
        model: str,
        server: Mapping[str, Any],
    ) -> None:
        super().__init__(session, policy=policy)
        self._otel = otel
        self._model = model
        common: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": model,
            **server,
        }
        if otel.provider_name:
            common["gen_ai.provider.name"] = "openai"
        self._common = common
        self._parent = otel.context.get_current()  # where the caller asked for the turn
        self._span: Any = None
        self._context: Any = None

    def wrap(self, events: Iterator[StreamEvent]) -> Generator[StreamEvent, None, None]:
        # the span is current during each step of the turn, never across a yield: between
        # two events the caller's own context is current (a generator runs in its caller's)
        context = self._otel.context
        self._guarded(self.begin)
        own = self._context if self._context is not None else self._parent
        try:
            while True:
                token = context.attach(own)
                try:
                    event = next(events)
                except StopIteration:
                    return
                finally:
                    context.detach(token)
                yield event
        finally:
            token = context.attach(own)
            try:
                close = getattr(events, "close", None)
                if close is not None:
                    close()
            finally:
                context.detach(token)
                self._guarded(self.finish)

    def begin(self) -> None:
        super().begin()
        otel = self._otel
        self._span = span = otel.tracer.start_span(
            f"chat {self._model}",
            context=self._parent,
            kind=otel.trace.SpanKind.CLIENT,
            attributes=self._common,
        )
        self._context = otel.trace.set_span_in_context(span, self._parent)

    def attempt_started(self, transport: str, *, full: bool, retry_reason: str | None) -> None:
        falls_back = (
            retry_reason is not None and transport == "sse" and self._transport == "websocket"
        )
        super().attempt_started(transport, full=full, retry_reason=retry_reason)
        if retry_reason is None or self._span is None:
            return
        reason = {"error.type": retry_reason}
        if falls_back:
            self._span.add_event("openai_ws.fallback", reason)
            self._otel.fallbacks.add(1, {**self._common, **reason})
        else:
            self._span.add_event("openai_ws.retry", reason)

    def finish(self) -> TurnStats:
        if self.stats is not None:
            return self.stats
        stats = super().finish()
        span = self._span
        if span is None:  # closed before it started: no turn, no span
            return stats
        self._span = None
        otel, final = self._otel, self.final
        error: str | None = None
        if final is None or (isinstance(final, Error) and final.reason == "aborted"):
            error = "aborted"  # abandoned or closed by the caller
        elif isinstance(final, Error):
            error = type(final.exception).__name__ if final.exception is not None else "error"
        attributes: dict[str, Any] = {
            "openai_ws.attempts": stats.attempts,
            "openai_ws.full_request": stats.full_request,
        }
        if stats.transport is not None:
            attributes["openai_ws.transport"] = stats.transport
        response_id = self.response_id
        if response_id is not None:
            attributes["gen_ai.response.id"] = response_id
        usage = None
        if isinstance(final, Done):
            usage = final.message.usage
        elif isinstance(final, Error):
            usage = final.error.usage
        tokens: tuple[int, int] | None = None
        if usage is not None and usage.total_tokens:
            tokens = (usage.input + usage.cache_read, usage.output)
            attributes["gen_ai.usage.input_tokens"] = tokens[0]
            attributes["gen_ai.usage.output_tokens"] = tokens[1]
        if error is not None:
            attributes["error.type"] = error
            span.set_status(otel.trace.Status(otel.trace.StatusCode.ERROR, error))
        span.set_attributes(attributes)
        span.end()
        measured = dict(self._common)
        if stats.transport is not None:
            measured["openai_ws.transport"] = stats.transport
        if error is not None:
            measured["error.type"] = error
        otel.duration.record(stats.duration_s, measured)
        if tokens is not None:
            otel.tokens.record(tokens[0], {**measured, "gen_ai.token.type": "input"})
            otel.tokens.record(tokens[1], {**measured, "gen_ai.token.type": "output"})
        return stats
