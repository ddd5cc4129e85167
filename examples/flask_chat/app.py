"""A streaming chat page with Flask and openai-ws.

Each browser gets a cookie and its own session (one WebSocket, chained turns). The tool loop runs
on the server; the page receives server-sent events and shows the answer token by token.

    python3 -m pip install ".[testing,flask]"    # in a clone of openai-ws
    python examples/flask_chat/app.py            # against the built-in emulator
    OPENAI_API_KEY=... python examples/flask_chat/app.py --real --model gpt-5.2

Then open http://127.0.0.1:5000/. Under gunicorn (``pip install gunicorn``)::

    OPENAI_API_KEY=... gunicorn --preload --workers 2 --threads 4 \\
        --chdir examples/flask_chat 'app:from_environment()'

With ``OPENAI_WS_CHAT_REDIS_URL=redis://...`` (``pip install redis``), every worker keeps the
chains in one :class:`~openai_ws.stores.RedisChainStore` and the conversations in the same
Redis, so any worker can take any turn (docs/topics/scaling.rst).

With ``OPENAI_WS_CHAT_OTEL=console`` (``pip install opentelemetry-sdk``), each chat request is
one OpenTelemetry trace, printed as JSON: a ``GET /stream`` span and, as its children, the
client's ``chat {model}`` span of every turn of the tool loop (docs/howto/observability.rst).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pickle
import threading
import uuid
from collections.abc import Iterator, MutableMapping
from typing import Any

try:
    from flask import (
        Flask,
        Response,
        make_response,
        render_template_string,
        request,
        stream_with_context,
    )
except ImportError as exc:  # say what to install rather than show a traceback
    raise SystemExit(
        'this example needs Flask: run python3 -m pip install ".[testing,flask]" '
        "in a clone of openai-ws (see examples/flask_chat/README.md)"
    ) from exc

from openai_ws import Client, Context, Tool, ToolResultMessage, UserMessage
from openai_ws.events import Done, Error, TextDelta, ToolCallEnd
from openai_ws.web import event_to_dict, sse_message

COOKIE = "openai_ws_chat"
WEATHER = {"Paris": "18C, sunny", "Rome": "24C, clear", "Oslo": "6C, rain", "Tokyo": "15C, cloudy"}
TOOLS = [
    Tool(
        "get_weather",
        "Current weather for a city",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )
]

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>openai-ws chat</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
  .turn { margin: .6rem 0; padding: .6rem .8rem; border-radius: .5rem; white-space: pre-wrap; }
  .user { background: #e8f0fe; }
  .assistant { background: #f1f3f4; }
  .tool { color: #5f6368; font-size: .85rem; font-family: ui-monospace, monospace; }
  form { display: flex; gap: .5rem; margin-top: 1rem; }
  input { flex: 1; padding: .5rem; font-size: 1rem; }
  #status { color: #5f6368; font-size: .8rem; }
</style>
</head>
<body>
<h1>openai-ws chat</h1>
<div id="log">
{% for turn in history %}
  <div class="turn {{ turn.role }}">{{ turn.text }}</div>
{% endfor %}
</div>
<form id="ask">
  <input id="question" name="message" autocomplete="off"
         placeholder="Ask about the weather in Paris, Rome, Oslo or Tokyo">
  <button type="submit">Send</button>
</form>
<div id="status"></div>
<script>
const log = document.getElementById("log");
const form = document.getElementById("ask");
const input = document.getElementById("question");
const status = document.getElementById("status");
function add(kind, text) {
  const div = document.createElement("div");
  div.className = "turn " + kind;
  div.textContent = text;
  log.appendChild(div);
  return div;
}
form.addEventListener("submit", (event) => {
  event.preventDefault();
  const message = input.value.trim();
  if (!message) return;
  input.value = "";
  add("user", message);
  let answer = null;
  const source = new EventSource("/stream?message=" + encodeURIComponent(message));
  status.textContent = "thinking...";
  source.addEventListener("text_delta", (e) => {
    const data = JSON.parse(e.data);
    if (data.commentary) return;
    if (!answer) answer = add("assistant", "");
    answer.textContent += data.delta;
  });
  source.addEventListener("toolcall_end", (e) => {
    const call = JSON.parse(e.data).tool_call;
    add("tool", "calling " + call.name + "(" + JSON.stringify(call.arguments) + ")");
  });
  source.addEventListener("tool_result", (e) => {
    const data = JSON.parse(e.data);
    add("tool", data.name + " returned " + data.result);
  });
  source.addEventListener("error", (e) => {
    if (e.data) add("tool", "error: " + JSON.parse(e.data).message);
  });
  source.addEventListener("end", (e) => {
    status.textContent = "served over " + JSON.parse(e.data).transport;
    source.close();
  });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) status.textContent = "";
    source.close();
  };
});
</script>
</body>
</html>
"""


class Conversation:
    def __init__(self, conversation_id: str) -> None:
        self.id = conversation_id
        self.lock = threading.Lock()
        self.context = Context(
            system_prompt="You are a terse weather assistant. Use get_weather.",
            tools=list(TOOLS),
        )

    def history(self) -> list[dict[str, str]]:
        turns = []
        for message in self.context.messages:
            if isinstance(message, UserMessage) and isinstance(message.content, str):
                turns.append({"role": "user", "text": message.content})
            elif getattr(message, "role", None) == "assistant" and message.text:  # type: ignore[union-attr]
                turns.append({"role": "assistant", "text": message.text})  # type: ignore[union-attr]
        return turns


def run_tool(name: str, arguments: dict[str, Any]) -> str:
    if name == "get_weather":
        return WEATHER.get(str(arguments.get("city")), "no data for that city")
    return f"unknown tool {name}"


class RedisHistory(MutableMapping[str, list[Any]]):
    """Each conversation's messages in Redis, for workers that share conversations. The
    messages are pickled: only for a Redis that this application alone writes to."""

    def __init__(self, url: str, ttl: int = 3600) -> None:
        import redis

        self.redis, self.ttl = redis.Redis.from_url(url), ttl

    def __getitem__(self, key: str) -> list[Any]:
        raw = self.redis.get(f"chat-history:{key}")
        if raw is None:
            raise KeyError(key)
        return list(pickle.loads(raw))  # noqa: S301 (see the class docstring)

    def __setitem__(self, key: str, messages: list[Any]) -> None:
        self.redis.set(f"chat-history:{key}", pickle.dumps(list(messages)), ex=self.ttl)

    def __delitem__(self, key: str) -> None:
        self.redis.delete(f"chat-history:{key}")

    def __iter__(self) -> Iterator[str]:
        return (k.decode().partition(":")[2] for k in self.redis.scan_iter("chat-history:*"))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class TracedBody:
    """A streamed response body whose every step runs inside *span*, an OpenTelemetry span
    that this body ends: when the body is exhausted, when it fails, or when the server closes
    it early (the browser went away; ``error.type`` is then ``"aborted"``).

    The span is current only while a step runs, never between two chunks (the server's own
    code runs then), so what the body calls, such as a client's turns, nests under it. Not
    thread-safe: a WSGI server iterates and closes a body from one thread at a time.
    """

    def __init__(self, body: Iterator[bytes], span: Any) -> None:
        from opentelemetry import context, trace

        self._body, self._span, self._api = body, span, context
        self._context = trace.set_span_in_context(span)
        self._error_status = trace.Status(trace.StatusCode.ERROR)

    def __iter__(self) -> TracedBody:
        return self

    def __next__(self) -> bytes:
        if self._span is None:
            raise StopIteration
        token = self._api.attach(self._context)
        try:
            return next(self._body)
        except StopIteration:
            self._end(None)
            raise
        except BaseException as exc:
            self._end(type(exc).__name__)
            raise
        finally:
            self._api.detach(token)

    def close(self) -> None:
        """End the body (and so the turn in progress) and the span; idempotent."""
        if self._span is None:
            return
        token = self._api.attach(self._context)
        try:
            getattr(self._body, "close", lambda: None)()
        finally:
            self._end("aborted")
            self._api.detach(token)

    def _end(self, error: str | None) -> None:
        span, self._span = self._span, None
        if span is None:
            return
        if error is not None:  # a class name only: no message, which could quote a prompt
            span.set_attribute("error.type", error)
            span.set_status(self._error_status)
        span.end()


def traced(tracer: Any, body: Iterator[bytes]) -> TracedBody:
    """*body*, the response of the current request, inside a server span of its own (named
    after the method and route, e.g. ``GET /stream``): the root of the request's trace."""
    from opentelemetry.trace import SpanKind

    route = request.url_rule.rule if request.url_rule is not None else request.path
    attributes = {
        "http.request.method": request.method,
        "http.route": route,
        "url.path": request.path,
        "http.response.status_code": 200,
    }
    span = tracer.start_span(
        f"{request.method} {route}", kind=SpanKind.SERVER, attributes=attributes
    )
    return TracedBody(body, span)


def create_app(
    client: Client,
    model: str = "gpt-5.2",
    *,
    histories: MutableMapping[str, list[Any]] | None = None,
    tracer_provider: Any = None,
) -> Flask:
    """The chat app, streaming through *client* (which it does not close). With *histories*,
    each conversation's messages are read from it before a question and written back after
    (for several worker processes); without, they live in this process. With
    *tracer_provider* (an OpenTelemetry ``TracerProvider``; give the client the same one),
    each chat request is one trace: a ``GET /stream`` span with the client's turn spans as
    its children. Without it, nothing of OpenTelemetry is imported."""
    app = Flask(__name__)
    tracer = None if tracer_provider is None else tracer_provider.get_tracer("flask_chat")
    app.extensions["openai_ws"] = client
    conversations: dict[str, Conversation] = {}
    registry = threading.Lock()

    def conversation(conversation_id: str) -> Conversation:
        with registry:
            if conversation_id not in conversations:
                conversations[conversation_id] = Conversation(conversation_id)
            return conversations[conversation_id]

    @app.get("/")
    def index() -> Response:
        conversation_id = request.cookies.get(COOKIE) or uuid.uuid4().hex
        chat = conversation(conversation_id)
        if histories is not None:
            chat.context.messages = list(histories.get(chat.id, []))
        page = render_template_string(PAGE, history=chat.history())
        response = make_response(page)
        response.set_cookie(COOKIE, conversation_id, httponly=True, samesite="Lax")
        return response

    @app.get("/stream")
    def stream() -> Response | tuple[str, int]:
        conversation_id = request.cookies.get(COOKIE)
        message = request.args.get("message", "").strip()
        if not conversation_id or not message:
            return "a chat cookie and a message are needed", 400
        chat = conversation(conversation_id)

        def events() -> Iterator[bytes]:
            with chat.lock:  # one question at a time per browser
                if histories is not None:
                    chat.context.messages = list(histories.get(chat.id, []))
                chat.context.messages.append(UserMessage(message))
                transport = "?"
                for _ in range(10):
                    turn = client.stream(model, chat.context, session_id=chat.id)
                    final = None
                    with contextlib.closing(turn):
                        for event in turn:
                            if isinstance(event, (TextDelta, ToolCallEnd, Error)):
                                yield sse_message(event.type, event_to_dict(event))
                            if isinstance(event, (Done, Error)):
                                final = event
                    transport = turn.transport or "?"
                    if not isinstance(final, Done):
                        break
                    chat.context.messages.append(final.message)
                    if final.message.stop_reason != "toolUse":
                        break
                    for call in final.message.tool_calls:
                        result = run_tool(call.name, call.arguments)
                        chat.context.messages.append(ToolResultMessage(call.id, call.name, result))
                        yield sse_message("tool_result", {"name": call.name, "result": result})
                if histories is not None:
                    histories[chat.id] = chat.context.messages
                yield sse_message("end", {"transport": transport})

        body: Iterator[bytes] = events()
        if tracer is not None:  # one trace per chat, the turns' spans under the request's
            body = traced(tracer, body)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        response = Response(
            stream_with_context(body), mimetype="text/event-stream", headers=headers
        )
        if isinstance(body, TracedBody):  # closed unread too: the span still ends
            response.call_on_close(body.close)
        return response

    return app


def tracer_provider_from_environment() -> Any:
    """The OpenTelemetry ``TracerProvider`` that ``OPENAI_WS_CHAT_OTEL`` asks for, or None
    when it is unset (then nothing of OpenTelemetry is imported). ``console``: the SDK's
    console exporter, which prints each span as JSON when it ends (in production, an OTLP
    exporter behind a batch processor)."""
    exporter = os.environ.get("OPENAI_WS_CHAT_OTEL", "")
    if not exporter:
        return None
    if exporter != "console":
        raise SystemExit(f"OPENAI_WS_CHAT_OTEL={exporter!r}: the example knows only 'console'")
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
    except ImportError as exc:
        raise SystemExit(
            "OPENAI_WS_CHAT_OTEL=console needs the OpenTelemetry SDK: "
            'python3 -m pip install ".[otel]" opentelemetry-sdk'
        ) from exc
    provider = TracerProvider(resource=Resource.create({"service.name": "flask_chat"}))
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    return provider


def from_environment() -> Flask:
    """The app for a WSGI server, with a client configured from the environment
    (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``...), the model from ``OPENAI_WS_CHAT_MODEL``
    and OpenTelemetry from ``OPENAI_WS_CHAT_OTEL`` (see :func:`tracer_provider_from_environment`)::

        gunicorn --preload --workers 2 --threads 4 --chdir examples/flask_chat \\
            'app:from_environment()'

    The client may be made before the server forks its workers (``--preload``): each worker
    opens its own connections.
    """
    model = os.environ.get("OPENAI_WS_CHAT_MODEL", "gpt-5.2")
    redis_url = os.environ.get("OPENAI_WS_CHAT_REDIS_URL")
    tracing = tracer_provider_from_environment()
    if not redis_url:
        return create_app(Client(tracer_provider=tracing), model, tracer_provider=tracing)
    from openai_ws.stores import RedisChainStore

    client = Client(chain_store=RedisChainStore(redis_url), tracer_provider=tracing)
    histories = RedisHistory(redis_url)
    return create_app(client, model, histories=histories, tracer_provider=tracing)


def main() -> None:
    parser = argparse.ArgumentParser(description="a streaming chat page")
    parser.add_argument("--real", action="store_true", help="use the real API (OPENAI_API_KEY)")
    parser.add_argument("--model", default="gpt-5.2")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    tracing = tracer_provider_from_environment()
    with contextlib.ExitStack() as stack:
        if tracing is not None:
            stack.callback(tracing.shutdown)
        if args.real:
            client = stack.enter_context(Client(tracer_provider=tracing))
        else:
            from openai_ws.testing import FakeResponsesServer, LatencyModel

            server = stack.enter_context(FakeResponsesServer(latency=LatencyModel.realistic()))
            client = stack.enter_context(
                Client(
                    api_key="sk-emulator", base_url=server.http_base_url, tracer_provider=tracing
                )
            )
            print(f"using the built-in emulator at {server.http_base_url}")
        app = create_app(client, args.model, tracer_provider=tracing)
        app.run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
