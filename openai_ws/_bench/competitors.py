"""The clients being compared, each able to stream one response and to run an agent loop.

Every competitor talks to the same emulator. ``setup`` and ``close`` are not timed; ``stream``
(one response of many deltas) and ``agent_loop`` (many tool turns) are.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Iterator
from typing import Any

import attrs

from ..protocol import TERMINAL_EVENT_TYPES

API_KEY = "sk-bench-emulator"
TOOL = {
    "type": "function",
    "name": "lookup",
    "description": "Looks a step up",
    "parameters": {
        "type": "object",
        "properties": {"step": {"type": "integer"}},
        "required": ["step"],
    },
}


def tool_output(step: int) -> str:
    """About 2 KB of deterministic tool output."""
    rows = [
        {"step": step, "row": i, "value": f"value-{step}-{i:03d}-" + "x" * 28} for i in range(30)
    ]
    return json.dumps(rows)


@attrs.define
class Urls:
    ws_url: str
    http_base_url: str
    api_key: str


@attrs.define
class LoopResult:
    turns: int
    first_token: list[float]


class Competitor:
    """One way of talking to the API."""

    name = ""
    transport = ""

    def __init__(self, urls: Urls) -> None:
        self.urls = urls

    def setup(self) -> None:
        """Prepare (connect, make clients): not timed."""

    def stream(self, words: int) -> int:
        """Stream one answer of *words* deltas; return how many events arrived."""
        raise NotImplementedError

    def agent_loop(self, turns: int) -> LoopResult:
        """Run a tool loop of *turns* tool calls (plus the answer)."""
        raise NotImplementedError

    def conversation(self, turns: int) -> list[float]:
        """One conversation of *turns* short turns; the client CPU seconds of each turn."""
        return list(self.turn_costs(turns))

    def turn_costs(self, turns: int) -> Iterator[float]:
        """:meth:`conversation`, one turn per ``next()`` (so that two clients can take turns,
        turn by turn, and meet the same moments of the machine)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release everything: not timed."""


def _field(obj: Any, name: str) -> Any:
    """A field of an event, a response or an item: dicts for the raw clients, objects for the
    official SDK."""
    return obj[name] if isinstance(obj, dict) else getattr(obj, name)


class _HandWritten(Competitor):
    """A client that sends request bodies and yields the server's events (``_turn``), with the
    agent loop written the way its users would write it: chained with ``previous_response_id``
    over WebSocket, the whole history each turn over HTTP."""

    def _turn(self, body: dict[str, Any]) -> Iterator[Any]:
        """Send one request and yield its events, up to and including the terminal one."""
        raise NotImplementedError

    def stream(self, words: int) -> int:
        return sum(
            1 for _ in self._turn({"model": "m", "input": f"stream {words}", "store": False})
        )

    def agent_loop(self, turns: int) -> LoopResult:
        chained = self.transport == "websocket"
        marks: list[float] = []
        history: list[Any] = [{"type": "message", "role": "user", "content": f"loop {turns}"}]
        body: dict[str, Any] = {"model": "m", "input": history, "tools": [TOOL], "store": False}
        for number in range(turns + 1):
            started = time.perf_counter()
            final = None
            seen = False
            for event in self._turn(body):
                kind = _field(event, "type")
                if not seen and kind.endswith(".delta"):
                    marks.append(time.perf_counter() - started)
                    seen = True
                if kind == "response.completed":
                    final = _field(event, "response")
            if final is None:
                raise RuntimeError(f"{self.name}: turn {number} did not complete")
            output = _field(final, "output")
            results = [
                {
                    "type": "function_call_output",
                    "call_id": _field(item, "call_id"),
                    "output": tool_output(number),
                }
                for item in output
                if _field(item, "type") == "function_call"
            ]
            if not results:
                return LoopResult(number + 1, marks)
            if chained:
                body = {
                    "model": "m",
                    "tools": [TOOL],
                    "store": False,
                    "previous_response_id": _field(final, "id"),
                    "input": results,
                }
            else:
                history += [*output, *results]  # body["input"] is this list
        raise RuntimeError("the loop did not end")


# -- the floor ----------------------------------------------------------------------------------


class RawWebSocket(_HandWritten):
    """websocket-client, json.loads on each frame: what a minimal hand-written client does.
    UTF-8 validation is off (the JSON decoder validates), which makes it the strictest floor."""

    name = "raw websocket-client"
    transport = "websocket"

    def setup(self) -> None:
        import websocket

        self.ws = websocket.create_connection(
            self.urls.ws_url,
            header=[f"Authorization: Bearer {self.urls.api_key}"],
            skip_utf8_validation=True,
            timeout=60,
        )

    def _turn(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        self.ws.send(json.dumps({"type": "response.create", **body}))
        while True:
            event: dict[str, Any] = json.loads(self.ws.recv())
            yield event
            if event["type"] in TERMINAL_EVENT_TYPES:
                return

    def turn_costs(self, turns: int) -> Iterator[float]:
        previous = None
        for number in range(turns):
            cpu0 = time.process_time()
            if number == 0:
                self.setup()
            body: dict[str, Any] = {
                "model": "m",
                "store": False,
                "input": [{"role": "user", "content": f"short turn {number}"}],
            }
            if previous is not None:
                body["previous_response_id"] = previous
            for event in self._turn(body):
                last = event
            previous = last["response"]["id"]
            yield time.process_time() - cpu0

    def close(self) -> None:
        self.ws.close()


class RawSSE(_HandWritten):
    """requests with iter_content and a minimal split on blank lines."""

    name = "raw requests + SSE split"
    transport = "sse"

    def setup(self) -> None:
        import requests

        self.session = requests.Session()

    def _turn(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        response = self.session.post(
            f"{self.urls.http_base_url}/responses",
            json={**body, "stream": True},
            headers={"Authorization": f"Bearer {self.urls.api_key}"},
            stream=True,
            timeout=60,
        )
        buffer = b""
        try:
            for chunk in response.iter_content(chunk_size=None):
                buffer += chunk
                *blocks, buffer = buffer.split(b"\n\n")
                for block in blocks:
                    for line in block.split(b"\n"):
                        if line.startswith(b"data: "):
                            event: dict[str, Any] = json.loads(line[6:])
                            yield event
                            if event["type"] in TERMINAL_EVENT_TYPES:
                                return
        finally:
            response.close()

    def close(self) -> None:
        self.session.close()


# -- the official SDK ---------------------------------------------------------------------------


class OpenAIHTTP(_HandWritten):
    """The official openai package: ``client.responses.create(..., stream=True)``, the whole
    history each turn, as its function-calling guide shows."""

    name = "openai SDK, HTTP streaming"
    transport = "sse"

    def setup(self) -> None:
        self.client = _openai().OpenAI(
            api_key=self.urls.api_key, base_url=self.urls.http_base_url, max_retries=0
        )

    def _turn(self, body: dict[str, Any]) -> Iterator[Any]:
        # to the stream's own end (just after the terminal event), so that the SDK returns its
        # connection to the pool, as a user's loop over the stream does
        yield from self.client.responses.create(**body, stream=True)

    def close(self) -> None:
        self.client.close()


class OpenAIWebSocket(_HandWritten):
    """The official openai package's WebSocket mode, ``client.responses.connect()``, chaining by
    hand with ``previous_response_id`` as its examples do."""

    name = "openai SDK, WebSocket mode"
    transport = "websocket"

    def setup(self) -> None:
        self.client = _openai().OpenAI(
            api_key=self.urls.api_key, base_url=self.urls.http_base_url, max_retries=0
        )
        self.manager = self.client.responses.connect(
            websocket_connection_options={"max_size": None}
        )
        self.connection = self.manager.__enter__()

    def _turn(self, body: dict[str, Any]) -> Iterator[Any]:
        self.connection.send({"type": "response.create", **body})
        for event in self.connection:
            yield event
            if event.type in TERMINAL_EVENT_TYPES:
                return

    def close(self) -> None:
        self.manager.__exit__(None, None, None)
        self.client.close()


# -- ours ---------------------------------------------------------------------------------------


class OursConnection(_HandWritten):
    """openai-ws's low-level ``WebSocketConnection.create``."""

    name = "openai-ws WebSocketConnection"
    transport = "websocket"

    def setup(self) -> None:
        from ..transports import WebSocketConnection

        self.connection = WebSocketConnection(self.urls.ws_url, api_key=self.urls.api_key)
        self.connection.connect()

    def _turn(self, body: dict[str, Any]) -> Iterator[Any]:
        return self.connection.create(body)

    def close(self) -> None:
        self.connection.close()


class OursSSE(_HandWritten):
    """openai-ws's low-level ``SSETransport.create``."""

    name = "openai-ws SSETransport"
    transport = "sse"

    def setup(self) -> None:
        from ..transports import SSETransport

        self.transport_ = SSETransport(self.urls.http_base_url, api_key=self.urls.api_key)

    def _turn(self, body: dict[str, Any]) -> Iterator[Any]:
        return self.transport_.create(body)

    def close(self) -> None:
        self.transport_.close()


class OursClient(Competitor):
    """openai-ws's ``Client.stream``, with a session, on one transport."""

    def __init__(self, urls: Urls, transport: str) -> None:
        super().__init__(urls)
        self.transport = transport
        self.name = f"openai-ws Client.stream ({transport})"

    def setup(self) -> None:
        from ..client import Client

        self.client = Client(
            api_key=self.urls.api_key, base_url=self.urls.http_base_url, transport=self.transport
        )
        self.counter = 0

    def stream(self, words: int) -> int:
        from ..messages import Context, UserMessage

        count = 0
        for _ in self.client.stream(
            "m", Context(messages=[UserMessage(f"stream {words}")]), session_id="bench"
        ):
            count += 1
        return count

    def agent_loop(self, turns: int) -> LoopResult:
        from ..events import Done, TextDelta, ThinkingDelta, ToolCallDelta
        from ..messages import Context, Tool, ToolResultMessage, UserMessage

        self.counter += 1
        tool = Tool("lookup", TOOL["description"], TOOL["parameters"])  # type: ignore[arg-type]
        context = Context(messages=[UserMessage(f"loop {turns}")], tools=[tool])
        marks: list[float] = []
        for number in range(turns + 1):
            started = time.perf_counter()
            seen = False
            final = None
            for event in self.client.stream("m", context, session_id=f"loop-{self.counter}"):
                if not seen and isinstance(event, (TextDelta, ToolCallDelta, ThinkingDelta)):
                    marks.append(time.perf_counter() - started)
                    seen = True
                final = event
            assert isinstance(final, Done), final
            message = final.message
            context.messages.append(message)
            if message.stop_reason != "toolUse":
                return LoopResult(number + 1, marks)
            for call in message.tool_calls:
                context.messages.append(ToolResultMessage(call.id, call.name, tool_output(number)))
        raise RuntimeError("the loop did not end")

    def turn_costs(self, turns: int) -> Iterator[float]:
        from ..events import Done
        from ..messages import Context, UserMessage

        self.counter += 1
        context = Context(messages=[])
        for number in range(turns):
            cpu0 = time.process_time()
            context.messages.append(UserMessage(f"short turn {number}"))
            final = None
            for event in self.client.stream("m", context, session_id=f"talk-{self.counter}"):
                final = event
            assert isinstance(final, Done), final
            context.messages.append(final.message)
            yield time.process_time() - cpu0

    def close(self) -> None:
        self.client.close()


def _openai() -> Any:
    """The official package, untyped here: it is an optional competitor, not a dependency."""
    return importlib.import_module("openai")


def openai_available() -> bool:
    try:
        importlib.import_module("openai")
        importlib.import_module("websockets")
    except ImportError:
        return False
    return True


def throughput_competitors(urls: Urls) -> list[Competitor]:
    out: list[Competitor] = [RawWebSocket(urls), RawSSE(urls)]
    if openai_available():
        out += [OpenAIWebSocket(urls), OpenAIHTTP(urls)]
    out += [
        OursConnection(urls),
        OursSSE(urls),
        OursClient(urls, "websocket"),
        OursClient(urls, "sse"),
    ]
    return out


def loop_competitors(urls: Urls) -> list[Competitor]:
    out: list[Competitor] = [RawWebSocket(urls), RawSSE(urls)]
    if openai_available():
        out += [OpenAIWebSocket(urls), OpenAIHTTP(urls)]
    out += [OursClient(urls, "websocket"), OursClient(urls, "sse")]
    return out


def turn_competitors(urls: Urls) -> list[Competitor]:
    """Short turns along one conversation: the raw floor and Client.stream over WebSocket.
    The raw client connects on its first turn (``setup`` does it inside ``conversation``)."""
    return [_LazyRaw(urls), OursClient(urls, "websocket")]


class _LazyRaw(RawWebSocket):
    def setup(self) -> None:
        if not hasattr(self, "ws"):
            super().setup()
