"""The Flask example with OpenTelemetry: one trace per chat request, the request's span its
root and the client's turn spans (one per turn of the tool loop) its children.

The real SDK (opentelemetry-sdk, the ``test`` extra) records in memory; the app is driven by
Flask's test client against the emulator. The provider is handed to the client and the app,
never set globally in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from openai_ws import Client
from openai_ws.testing import FakeResponsesServer, LatencyModel
from tests.conftest import FLASK_EXAMPLE, KEY, load_flask_example

APP = FLASK_EXAMPLE
REQUEST = "GET /stream"
TURN = "chat gpt-5.2"


class Traced:
    """The example's app and a client sharing one SDK tracer provider, recording in memory."""

    def __init__(self, server: FakeResponsesServer, client: Client, provider: TracerProvider):
        self.server = server
        self.spans_out = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(self.spans_out))
        self.app = load_flask_example().create_app(client, tracer_provider=provider)
        self.browser = self.app.test_client()
        assert self.browser.get("/").status_code == 200  # sets the chat cookie

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.spans_out.get_finished_spans() if name is None or s.name == name]


@pytest.fixture
def traced() -> Iterator[Traced]:
    provider = TracerProvider()
    with (
        FakeResponsesServer(latency=LatencyModel.instant(), api_key=KEY) as server,
        Client(api_key=KEY, base_url=server.http_base_url, tracer_provider=provider) as client,
    ):
        yield Traced(server, client, provider)
    provider.shutdown()


def sse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def parent_id(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def test_each_chat_request_is_one_trace_with_its_turns_as_children(traced: Traced) -> None:
    def chat(message: str) -> list[tuple[str, dict[str, Any]]]:
        # one at a time: a browser's next question waits for the answer to the previous one
        with traced.browser.get("/stream", query_string={"message": message}) as response:
            assert response.status_code == 200
            return sse_events(response.get_data(as_text=True))

    # the first chat calls the tool (two turns), the second answers at once (one turn)
    weather = chat("The weather in Paris?")
    assert ("tool_result", {"name": "get_weather", "result": "18C, sunny"}) in weather
    assert weather[-1] == ("end", {"transport": "websocket"})
    hello = chat("Hello there")
    assert hello[-1] == ("end", {"transport": "websocket"})
    assert "tool_result" not in [name for name, _ in hello]

    spans = traced.spans()
    requests, turns = traced.spans(REQUEST), traced.spans(TURN)
    assert len(requests) == 2
    assert len(turns) == 3
    assert len(spans) == 5, [s.name for s in spans]
    by_trace: dict[int, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        assert span.context is not None
        by_trace[span.context.trace_id].append(span)
    assert len(by_trace) == 2  # exactly two traces, no span outside them

    turns_per_request = []
    for trace_spans in by_trace.values():
        roots = [s for s in trace_spans if s.parent is None]
        assert [s.name for s in roots] == [REQUEST]  # the request's span is the trace's root
        root = roots[0]
        assert root.context is not None
        children = [s for s in trace_spans if s is not root]
        assert children
        assert all(s.name == TURN for s in children)
        for child in children:
            assert child.parent is not None
            assert child.parent.trace_id == root.context.trace_id  # no span crosses traces
            assert parent_id(child) == root.context.span_id
            assert child.kind is SpanKind.CLIENT
            assert child.status.status_code is StatusCode.UNSET
            # the turn ran inside the request, in the streamed body
            assert root.start_time is not None
            assert child.start_time is not None
            assert root.end_time is not None
            assert child.end_time is not None
            assert root.start_time <= child.start_time <= child.end_time <= root.end_time
        assert root.kind is SpanKind.SERVER
        assert root.status.status_code is StatusCode.UNSET
        assert dict(root.attributes or {}) == {
            "http.request.method": "GET",
            "http.route": "/stream",
            "url.path": "/stream",
            "http.response.status_code": 200,
        }
        turns_per_request.append(len(children))
    assert sorted(turns_per_request) == [1, 2]
    # the tool loop's second turn chained from the first, in the same trace
    (two_turns,) = [t for t in by_trace.values() if len(t) == 3]
    in_order = sorted((s for s in two_turns if s.name == TURN), key=lambda s: s.start_time or 0)
    assert [dict(s.attributes or {})["openai_ws.full_request"] for s in in_order] == [True, False]


def test_the_request_span_ends_when_the_browser_goes_away(traced: Traced) -> None:
    response = traced.browser.get(
        "/stream", query_string={"message": "Hello there"}, buffered=False
    )
    chunks = response.iter_encoded()
    assert next(chunks).startswith(b"event: text_delta")
    assert traced.spans() == []  # the request and its turn are running
    response.close()  # what the server does when the browser goes away

    (request,) = traced.spans(REQUEST)
    (turn,) = traced.spans(TURN)
    assert request.attributes is not None
    assert request.attributes["error.type"] == "aborted"
    assert request.status.status_code is StatusCode.ERROR
    assert request.parent is None
    assert request.context is not None
    assert turn.context is not None
    assert turn.context.trace_id == request.context.trace_id
    assert parent_id(turn) == request.context.span_id
    assert turn.attributes is not None
    assert turn.attributes["error.type"] == "aborted"


def test_the_request_span_ends_when_the_body_is_closed_unread(traced: Traced) -> None:
    # Flask's test client reads the first chunk itself: drive the WSGI app directly and close
    # its body before the server took anything from it
    from werkzeug.test import EnvironBuilder

    cookie = traced.browser.get_cookie("openai_ws_chat")
    assert cookie is not None
    environ = EnvironBuilder(
        path="/stream",
        query_string={"message": "Hello there"},
        headers={"Cookie": f"openai_ws_chat={cookie.value}"},
    ).get_environ()
    statuses: list[str] = []
    body = traced.app(environ, lambda status, headers, *_: statuses.append(status))
    assert statuses == ["200 OK"]
    body.close()

    (request,) = traced.spans(REQUEST)
    assert request.attributes is not None
    assert request.attributes["error.type"] == "aborted"
    assert traced.spans(TURN) == []  # no turn started
    assert traced.server.stats.requests == 0


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(APP)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **env},
    )


def test_from_environment_prints_one_trace_per_chat_with_the_console_exporter() -> None:
    code = """
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("flask_chat_app", sys.argv[1])
        example = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(example)
        app = example.from_environment()
        browser = app.test_client()
        browser.get("/")
        with browser.get("/stream", query_string={"message": "The weather in Rome?"}) as r:
            body = r.data
        assert b"24C, clear" in body, body
        app.extensions["openai_ws"].close()
    """
    with FakeResponsesServer(latency=LatencyModel.instant(), api_key=KEY) as server:
        result = run_python(
            code,
            {
                "OPENAI_WS_CHAT_OTEL": "console",
                "OPENAI_API_KEY": KEY,
                "OPENAI_BASE_URL": server.http_base_url,
            },
        )
    assert result.returncode == 0, result.stderr
    decoder, out, spans = json.JSONDecoder(), result.stdout.strip(), []
    while out:
        span, end = decoder.raw_decode(out)
        spans.append(span)
        out = out[end:].strip()
    assert [s["name"] for s in spans] == [TURN, TURN, REQUEST]  # in the order they ended
    request = spans[-1]
    assert request["parent_id"] is None
    assert request["resource"]["attributes"]["service.name"] == "flask_chat"
    for turn in spans[:2]:
        assert turn["context"]["trace_id"] == request["context"]["trace_id"]
        assert turn["parent_id"] == request["context"]["span_id"]
    assert KEY not in result.stdout + result.stderr


def test_without_opentelemetry_the_example_works_and_imports_none_of_it() -> None:
    code = """
        import importlib.util, sys
        sys.modules["opentelemetry"] = None  # as if it were not installed
        from openai_ws import Client
        from openai_ws.testing import FakeResponsesServer, LatencyModel
        spec = importlib.util.spec_from_file_location("flask_chat_app", sys.argv[1])
        example = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(example)
        assert example.tracer_provider_from_environment() is None
        with FakeResponsesServer(latency=LatencyModel.instant()) as server:
            with Client(api_key="sk-test", base_url=server.http_base_url) as client:
                browser = example.create_app(client).test_client()
                browser.get("/")
                with browser.get("/stream", query_string={"message": "Weather in Oslo?"}) as r:
                    body = r.data
        assert b"6C, rain" in body, body
        assert b"event: end" in body, body
        loaded = [m for m in sys.modules if m.startswith("opentelemetry.")]
        assert not loaded, loaded
        print("ok")
    """
    env = {"OPENAI_WS_CHAT_OTEL": ""}
    result = run_python(code, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_an_unknown_exporter_is_refused_with_a_message() -> None:
    code = """
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("flask_chat_app", sys.argv[1])
        example = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(example)
        example.from_environment()
    """
    result = run_python(code, {"OPENAI_WS_CHAT_OTEL": "zipkin", "OPENAI_API_KEY": KEY})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "OPENAI_WS_CHAT_OTEL='zipkin'" in result.stderr
