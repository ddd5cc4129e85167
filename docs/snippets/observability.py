"""See what your turns cost: TurnStats for each turn, and an OpenTelemetry span per turn."""

import sys

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from openai_ws import Client, Context, UserMessage
from openai_ws.testing import FakeResponsesServer, RefuseUpgrade

# print every span as JSON when it ends (in production: an OTLP exporter and a batch processor)
tracing = TracerProvider()
tracing.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stdout)))

with (
    FakeResponsesServer() as server,
    Client(api_key="sk-test", base_url=server.http_base_url, tracer_provider=tracing) as client,
):
    context = Context(messages=[UserMessage("Hello")])
    for question in ("And in French?", None):
        stream = client.stream("gpt-5.2", context, session_id="s")
        context.messages.append(stream.result())
        print(stream.stats)  # a one-line summary; repr() gives every field
        if question:
            context.messages.append(UserMessage(question))

    server.inject(RefuseUpgrade(426))  # no WebSocket for the next handshake: HTTP answers
    stream = client.stream("gpt-5.2", context)
    stream.result()
    stats = stream.stats
    assert stats is not None
    print(f"{stats.transport} after falling back ({stats.fallback}), {stats.attempts} attempts")
tracing.shutdown()
