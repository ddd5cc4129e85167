"""StreamResponse.stats and the OpenTelemetry spans and metrics, against the emulator.

OpenTelemetry is the real SDK (opentelemetry-sdk, the ``test`` extra) with its in-memory span
exporter and metric reader, handed to the Client (never set globally in this process: the
global provider is tested in a subprocess, as is a process without OpenTelemetry).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from openai_ws import Client, Context, StreamOptions, TurnStats, UserMessage
from openai_ws.events import Done, Error, Start, TextDelta
from openai_ws.testing import (
    CloseSocket,
    FakeResponsesServer,
    LatencyModel,
    RefuseUpgrade,
    Rejection,
    ScriptedModel,
    Text,
)
from tests.conftest import KEY, TIME_FACTOR

SECRET_PROMPT = "my secret prompt 4711"
SECRET_ANSWER = "the confidential answer 0815"


class Otel:
    """A tracer and a meter provider of the SDK, recording in memory."""

    def __init__(self) -> None:
        self.spans_out = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans_out))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.spans_out.get_finished_spans() if name is None or s.name == name]

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        if data is None:
            return []
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for m in scope.metrics
            if m.name == metric
            for point in m.data.data_points
        ]

    def close(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


@pytest.fixture
def server() -> Iterator[FakeResponsesServer]:
    model = ScriptedModel([SECRET_ANSWER], then="repeat")
    with FakeResponsesServer(model=model, latency=LatencyModel.instant(), api_key=KEY) as emulator:
        yield emulator


@pytest.fixture
def otel() -> Iterator[Otel]:
    recorder = Otel()
    yield recorder
    recorder.close()


@pytest.fixture
def client(server: FakeResponsesServer) -> Iterator[Client]:
    with Client(api_key=KEY, base_url=server.http_base_url) as c:
        yield c


@pytest.fixture
def traced(server: FakeResponsesServer, otel: Otel) -> Iterator[Client]:
    with Client(
        api_key=KEY,
        base_url=server.http_base_url,
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
    ) as c:
        yield c


def ctx(text: str = SECRET_PROMPT) -> Context:
    return Context(system_prompt="Be terse.", messages=[UserMessage(text)])


def two_turns(client: Client, server: FakeResponsesServer) -> list[tuple[TurnStats, int, str]]:
    """A turn and its chained continuation on one session: (stats, body bytes the server
    received, response id) of each."""
    context = ctx()
    out = []
    for follow_up in ("", "And tomorrow?"):
        if follow_up:
            context.messages.append(UserMessage(follow_up))
        before = server.stats.body_bytes_in
        stream = client.stream("gpt-test", context, session_id="chat")
        assert stream.stats is None  # nothing before the end
        message = stream.result()
        context.messages.append(message)
        assert stream.stats is not None
        assert stream.response_id is not None
        out.append((stream.stats, server.stats.body_bytes_in - before, stream.response_id))
    return out


# -- TurnStats -----------------------------------------------------------------------------------


def test_stats_of_a_turn_and_its_chained_continuation(
    server: FakeResponsesServer, client: Client
) -> None:
    (first, sent1, id1), (second, sent2, _) = two_turns(client, server)
    assert first.transport == "websocket"
    assert first.attempts == 1
    assert first.full_request
    assert first.previous_response_id is None
    assert not first.socket_reused  # the session's socket opened for it
    assert first.input_items_sent == 1
    assert first.bytes_sent == sent1  # the response.create frame, as the server counted it
    assert first.bytes_received > len(SECRET_ANSWER)
    assert first.ttft_s is not None
    assert 0 < first.ttft_s <= first.duration_s
    assert first.fallback is None

    assert not second.full_request
    assert second.previous_response_id == id1
    assert second.socket_reused
    assert second.input_items_sent == 1  # the new question only, not the whole conversation
    assert second.bytes_sent == sent2
    assert second.attempts == 1
    assert second.transport == "websocket"


def test_stats_over_http_and_of_a_one_off(server: FakeResponsesServer, client: Client) -> None:
    before = server.stats.body_bytes_in
    http = client.stream("gpt-test", ctx(), transport="sse")
    http.result()
    assert http.stats is not None
    assert http.stats.transport == "sse"
    assert http.stats.attempts == 1
    assert http.stats.bytes_sent == server.stats.body_bytes_in - before
    assert not http.stats.socket_reused
    assert http.stats.full_request

    one_off = client.stream("gpt-test", ctx())
    one_off.result()
    assert one_off.stats is not None
    assert one_off.stats.transport == "websocket"
    assert not one_off.stats.socket_reused


def test_stats_count_every_attempt_of_a_retry(server: FakeResponsesServer, client: Client) -> None:
    server.inject(CloseSocket(after_events=1, code=1006))  # dropped before any output
    before = server.stats.body_bytes_in
    stream = client.stream("gpt-test", ctx(), session_id="s")
    assert stream.result().text == SECRET_ANSWER
    stats = stream.stats
    assert stats is not None
    assert stream.attempts == ["websocket: ConnectionClosed", "websocket: done"]
    assert stats.attempts == 2
    assert stats.transport == "websocket"
    assert stats.fallback is None
    assert stats.bytes_sent == server.stats.body_bytes_in - before  # both frames
    assert server.stats.requests == 2


def test_stats_of_a_fallback(server: FakeResponsesServer, client: Client) -> None:
    server.inject(RefuseUpgrade(426))
    stream = client.stream("gpt-test", ctx(), session_id="s")
    stream.result()
    stats = stream.stats
    assert stats is not None
    assert stream.attempts == ["websocket: ConnectError", "sse: done"]
    assert stats.attempts == 2
    assert stats.transport == "sse"
    assert stats.fallback == "ConnectError"
    assert not stats.socket_reused
    assert stats.bytes_received > 0


def test_stats_of_an_error(server: FakeResponsesServer, client: Client) -> None:
    server.inject(Rejection(code="context_length_exceeded", message="too long", param="input"))
    stream = client.stream("gpt-test", ctx(), session_id="s")
    events = list(stream)
    assert isinstance(events[-1], Error)
    stats = stream.stats
    assert stats is not None
    assert stats.attempts == 1
    assert stats.transport == "websocket"
    assert stats.ttft_s is None  # nothing reached the caller
    assert stats.bytes_sent > 0
    assert stats.bytes_received > 0


def test_stats_of_an_abandoned_stream(server: FakeResponsesServer, client: Client) -> None:
    server.model = ScriptedModel([Text("word " * 400)])
    stream = client.stream("gpt-test", ctx(), session_id="s")
    for event in stream:
        if isinstance(event, TextDelta):
            break
    assert stream.stats is None  # still open
    stream.close()
    stats = stream.stats
    assert stats is not None
    assert stats.attempts == 1
    assert stats.ttft_s is not None
    assert stats.bytes_sent > 0
    assert stats.bytes_received > 0

    never = client.stream("gpt-test", ctx(), session_id="s")
    never.close()  # closed before it started: nothing was tried
    assert never.stats == TurnStats(
        transport=None,
        attempts=0,
        ttft_s=None,
        duration_s=0.0,
        bytes_sent=0,
        bytes_received=0,
        input_items_sent=0,
        full_request=False,
        previous_response_id=None,
        socket_reused=False,
        fallback=None,
    )


# -- spans and metrics -------------------------------------------------------------------------


def test_a_chained_turn_makes_a_span_each_with_the_genai_attributes(
    server: FakeResponsesServer, traced: Client, otel: Otel
) -> None:
    (_, _, id1), (_, _, id2) = two_turns(traced, server)
    first, second = otel.spans()
    assert first.name == second.name == "chat gpt-test"
    assert first.kind == trace.SpanKind.CLIENT
    assert first.parent is None  # nothing of the caller's was current
    attributes = dict(first.attributes or {})
    assert attributes["gen_ai.system"] == "openai"
    assert attributes["gen_ai.provider.name"] == "openai"  # the installed conventions have it
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "gpt-test"
    assert attributes["gen_ai.response.id"] == id1
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == server.port
    assert attributes["gen_ai.usage.input_tokens"] > 0
    assert attributes["gen_ai.usage.output_tokens"] > 0
    assert attributes["openai_ws.transport"] == "websocket"
    assert attributes["openai_ws.attempts"] == 1
    assert attributes["openai_ws.full_request"] is True
    assert first.status.status_code == trace.StatusCode.UNSET
    assert not first.events
    assert dict(second.attributes or {})["openai_ws.full_request"] is False
    assert dict(second.attributes or {})["gen_ai.response.id"] == id2

    durations = otel.points("gen_ai.client.operation.duration")
    assert [p.count for p in durations] == [2]
    assert durations[0].attributes["openai_ws.transport"] == "websocket"
    assert durations[0].sum > 0
    tokens = {
        p.attributes["gen_ai.token.type"]: p for p in otel.points("gen_ai.client.token.usage")
    }
    assert set(tokens) == {"input", "output"}
    assert tokens["input"].count == tokens["output"].count == 2
    assert tokens["input"].sum == sum(
        dict(s.attributes or {})["gen_ai.usage.input_tokens"] for s in otel.spans()
    )
    assert otel.points("openai_ws.fallbacks") == []


def test_a_fallback_is_an_event_and_counted_by_reason(
    server: FakeResponsesServer, traced: Client, otel: Otel
) -> None:
    server.inject(RefuseUpgrade(426))
    stream = traced.stream("gpt-test", ctx(), session_id="s")
    stream.result()
    (span,) = otel.spans()
    assert [(e.name, dict(e.attributes or {})) for e in span.events] == [
        ("openai_ws.fallback", {"error.type": "ConnectError"})
    ]
    attributes = dict(span.attributes or {})
    assert attributes["openai_ws.transport"] == "sse"
    assert attributes["openai_ws.attempts"] == 2
    assert span.status.status_code == trace.StatusCode.UNSET
    (fallbacks,) = otel.points("openai_ws.fallbacks")
    assert fallbacks.value == 1
    assert fallbacks.attributes["error.type"] == "ConnectError"


def test_a_retry_is_an_event(server: FakeResponsesServer, traced: Client, otel: Otel) -> None:
    server.inject(CloseSocket(after_events=1, code=1006))
    traced.stream("gpt-test", ctx(), session_id="s").result()
    (span,) = otel.spans()
    assert [(e.name, dict(e.attributes or {})) for e in span.events] == [
        ("openai_ws.retry", {"error.type": "ConnectionClosed"})
    ]
    assert dict(span.attributes or {})["openai_ws.attempts"] == 2


def test_an_error_sets_the_error_status(
    server: FakeResponsesServer, traced: Client, otel: Otel
) -> None:
    server.inject(Rejection(code="context_length_exceeded", message="too long", param="input"))
    stream = traced.stream("gpt-test", ctx(), session_id="s")
    final = list(stream)[-1]
    assert isinstance(final, Error)
    assert final.exception is not None
    (span,) = otel.spans()
    assert span.status.status_code == trace.StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == type(final.exception).__name__
    assert "too long" not in str(span.status.description)  # the server's words stay out
    (duration,) = otel.points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == type(final.exception).__name__


def test_an_aborted_stream_ends_its_span(
    server: FakeResponsesServer, traced: Client, otel: Otel
) -> None:
    server.model = ScriptedModel([Text("word " * 400)], then="repeat")
    closed = traced.stream("gpt-test", ctx(), session_id="a")
    for event in closed:
        if isinstance(event, TextDelta):
            break
    assert otel.spans() == []  # still open
    closed.close()
    (span,) = otel.spans()
    assert span.status.status_code == trace.StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "aborted"

    # dropped by a for loop's break, with no reference left: the span ends at once
    for event in traced.stream("gpt-test", ctx(), session_id="b"):
        if isinstance(event, TextDelta):
            break
    assert len(otel.spans()) == 2

    # left open in this thread, and abandoned by the session's next turn
    left = traced.stream("gpt-test", ctx(), session_id="c")
    assert isinstance(next(left), Start)
    traced.stream("gpt-test", ctx(), session_id="c").result()
    assert len(otel.spans()) == 4
    assert left.stats is not None
    assert left.stats.attempts == 1
    errors = [dict(s.attributes or {}).get("error.type") for s in otel.spans()]
    assert errors == ["aborted", "aborted", "aborted", None]

    # closed from another thread while the turn waits for the server
    server.model = ScriptedModel([Text("slow")])
    from openai_ws.testing import Stall

    server.inject(Stall(30 * TIME_FACTOR, after_events=2))
    waiting = traced.stream("gpt-test", ctx(), session_id="d")
    assert isinstance(next(waiting), Start)
    closer = threading.Timer(0.05, waiting.close)
    closer.start()
    rest = list(waiting)
    closer.join()
    assert isinstance(rest[-1], Error)
    assert rest[-1].reason == "aborted"
    assert dict(otel.spans()[-1].attributes or {})["error.type"] == "aborted"
    assert len(otel.spans()) == 5

    durations = otel.points("gen_ai.client.operation.duration")
    assert sum(p.count for p in durations if p.attributes.get("error.type") == "aborted") == 4


def test_a_turn_in_a_thread_nests_under_the_users_span(
    server: FakeResponsesServer, traced: Client, otel: Otel
) -> None:
    tracer = otel.tracer_provider.get_tracer("the-app")
    seen: dict[str, Any] = {}

    def on_payload(body: dict[str, Any]) -> None:
        # code the turn runs (here: the payload hook) sees the turn's span as current
        with tracer.start_as_current_span("in the hook"):
            seen["hook"] = trace.get_current_span().get_span_context()

    def handle_request() -> None:
        with tracer.start_as_current_span("user request") as request:
            stream = traced.stream(
                "gpt-test", ctx(), session_id="t", options=StreamOptions(on_payload=on_payload)
            )
            for event in stream:
                # between events the caller's own context is current, not the turn's span
                seen.setdefault("between", trace.get_current_span() is request)
                with tracer.start_as_current_span("user work"):
                    pass
                if isinstance(event, Done):
                    seen["stats"] = stream.stats
            seen["after"] = trace.get_current_span() is request

    worker = threading.Thread(target=handle_request)
    worker.start()
    worker.join(10 * TIME_FACTOR)
    assert not worker.is_alive()
    (request,) = otel.spans("user request")
    (turn,) = otel.spans("chat gpt-test")
    (hook,) = otel.spans("in the hook")
    work = otel.spans("user work")
    assert turn.parent is not None
    assert turn.parent.span_id == request.context.span_id
    assert turn.context.trace_id == request.context.trace_id
    assert hook.parent is not None
    assert hook.parent.span_id == turn.context.span_id
    assert work
    assert all(w.parent is not None for w in work)
    assert {w.parent.span_id for w in work if w.parent} == {request.context.span_id}
    assert seen["between"] is True
    assert seen["after"] is True
    assert isinstance(seen["stats"], TurnStats)
    assert request.end_time is not None
    assert turn.end_time is not None
    assert turn.end_time <= request.end_time


def test_nothing_private_reaches_spans_or_metrics(
    server: FakeResponsesServer, traced: Client, otel: Otel
) -> None:
    two_turns(traced, server)
    server.inject(Rejection(code="invalid_value", message=SECRET_PROMPT, param="input"))
    list(traced.stream("gpt-test", ctx(), session_id="chat"))
    recorded = [span.to_json() for span in otel.spans()]
    data = otel.reader.get_metrics_data()
    assert data is not None
    recorded.append(data.to_json())
    assert len(otel.spans()) == 3
    for text in recorded:
        for secret in (SECRET_PROMPT, SECRET_ANSWER, KEY, "Be terse", "tomorrow"):
            assert secret not in text


# -- the global providers, and a process without OpenTelemetry ----------------------------------

SCRIPT = textwrap.dedent(
    """
    import json, sys
    {prelude}
    from openai_ws import Client, Context, UserMessage
    from openai_ws.testing import FakeResponsesServer, LatencyModel

    with FakeResponsesServer(latency=LatencyModel.instant(), api_key="sk-sub") as server:
        with Client(api_key="sk-sub", base_url=server.http_base_url) as client:
            context = Context(messages=[UserMessage("hi")])
            stream = client.stream("gpt-test", context, session_id="s")
            text = stream.result().text
    {check}
    print(json.dumps({{
        "text": text,
        "stats": stream.stats.transport,
        "otel_modules": sorted(m for m in sys.modules if m.startswith("opentelemetry")),
        "spans": spans,
    }}))
    """
)


def run_script(prelude: str = "", check: str = "spans = None") -> dict[str, Any]:
    code = SCRIPT.format(prelude=prelude, check=check)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60 * TIME_FACTOR
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_without_opentelemetry_nothing_is_imported() -> None:
    # installed but not used by the application: not imported, the turn is plain
    unused = run_script()
    assert unused["text"]
    assert unused["stats"] == "websocket"
    assert unused["otel_modules"] == []
    # not installed at all (every import of it fails): the same
    blocked = run_script(prelude="sys.modules['opentelemetry'] = None")
    assert blocked["text"]
    assert blocked["stats"] == "websocket"
    assert blocked["otel_modules"] == ["opentelemetry"]  # the blocker itself, nothing else


def test_the_global_providers_are_used_once_the_application_sets_them() -> None:
    prelude = textwrap.dedent(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        """
    )
    result = run_script(
        prelude=prelude,
        check="spans = [s.name for s in exporter.get_finished_spans()]",
    )
    assert result["spans"] == ["chat gpt-test"]
