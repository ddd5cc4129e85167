"""The ``openai-ws`` command (also ``python -m openai_ws``).

* ``openai-ws demo``: a tool-calling agent loop against the built-in emulator, over WebSocket
  mode and then over HTTP streaming, and what each cost. No key, no network beyond 127.0.0.1.
* ``openai-ws chat``: an interactive streaming chat with the real API (``OPENAI_API_KEY``), or
  with the built-in emulator (``--emulator``).
* ``openai-ws bench``: the side-by-side benchmark (see ``docs/topics/performance.rst``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TextIO

import attrs

from ._version import __version__
from .client import Client
from .events import Done, Error, TextDelta, ToolCallEnd, ToolCallStart
from .exceptions import ConfigurationError
from .messages import Context, Tool, ToolCall, ToolResultMessage, UserMessage

__all__ = ["main", "run_chat", "run_demo"]

DEMO_QUESTION = "What's the weather in Paris, Rome, Oslo, Tokyo, Lima and Cairo?"
DEMO_TOOL = Tool(
    "get_weather",
    "The current weather and the next 24 hours' forecast for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
SKIES = ("clear", "partly cloudy", "cloudy", "light rain", "showers", "sunny")
CLOCK_TOOL = Tool(
    "get_local_time",
    "The current local time in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def _local_time(city: str) -> str:
    seed = sum(map(ord, city))
    return f"{seed % 24:02d}:{seed % 60:02d} in {city}"


#: The tools ``openai-ws chat --emulator`` offers, and what runs them (made-up answers).
CHAT_TOOLS: dict[str, tuple[Tool, Callable[[dict[str, Any]], str]]] = {
    DEMO_TOOL.name: (DEMO_TOOL, lambda a: json.loads(forecast(str(a.get("city", ""))))["now"]),
    CLOCK_TOOL.name: (CLOCK_TOOL, lambda a: _local_time(str(a.get("city", "")))),
}


def forecast(city: str) -> str:
    """A deterministic made-up forecast (about 1.5 KB of JSON, like a real tool's output)."""
    seed = sum(map(ord, city))
    hours = [
        {
            "hour": h,
            "temp_c": 8 + (seed + 3 * h) % 15,
            "sky": SKIES[(seed + h) % len(SKIES)],
            "wind_kmh": (seed * h) % 30,
        }
        for h in range(24)
    ]
    now = hours[0]
    return json.dumps({"city": city, "now": f"{now['temp_c']}C, {now['sky']}", "hourly": hours})


@attrs.define
class RunReport:
    """What one agent loop over one transport cost, as measured by the demo."""

    transport: str
    turns: int = 0
    requests: int = 0
    bytes_uploaded: int = 0
    first_token: list[float] = attrs.field(factory=list)
    total: float = 0.0
    served_by: list[str] = attrs.field(factory=list)
    answer: str = ""


def _agent_loop(
    client: Client, transport: str, question: str, model: str, out: TextIO
) -> RunReport:
    report = RunReport(transport)
    context = Context(
        system_prompt="You are a weather assistant. Use get_weather for every city asked about.",
        messages=[UserMessage(question)],
        tools=[DEMO_TOOL],
    )
    started = time.perf_counter()
    while report.turns < 20:
        report.turns += 1
        turn_started = time.perf_counter()
        first: float | None = None
        stream = client.stream(model, context, session_id=f"demo-{transport}", transport=transport)
        final: Done | Error | None = None
        for event in stream:
            if first is None and isinstance(event, (TextDelta, ToolCallStart)):
                first = time.perf_counter() - turn_started
            if isinstance(event, TextDelta) and not event.commentary:
                out.write(event.delta)
                out.flush()
            elif isinstance(event, ToolCallEnd):
                arguments = json.dumps(event.tool_call.arguments)
                out.write(f"  -> {event.tool_call.name}({arguments})\n")
            elif isinstance(event, (Done, Error)):
                final = event
        report.served_by.append(stream.transport or "?")
        if first is not None:
            report.first_token.append(first)
        if not isinstance(final, Done):
            why = final.error.error_message if final is not None else "no final event"
            raise RuntimeError(f"the {transport} run failed: {why}")
        message = final.message
        context.messages.append(message)
        if message.stop_reason != "toolUse":
            report.answer = message.text
            out.write(f"\n  [{stream.stats}]\n")  # what the turn cost (TurnStats)
            break
        out.write(f"  [{stream.stats}]\n")
        for call in message.tool_calls:
            result = forecast(str(call.arguments.get("city", "?")))
            context.messages.append(ToolResultMessage(call.id, call.name, result))
    report.total = time.perf_counter() - started
    return report


def _table(reports: Sequence[RunReport]) -> str:
    def seconds(value: float) -> str:
        return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"

    rows = [
        ("", *(r.transport for r in reports)),
        ("turns", *(str(r.turns) for r in reports)),
        ("requests sent", *(str(r.requests) for r in reports)),
        ("bytes uploaded", *(f"{r.bytes_uploaded:,}" for r in reports)),
        (
            "time to first token (median)",
            *(seconds(statistics.median(r.first_token)) if r.first_token else "-" for r in reports),
        ),
        ("total time", *(seconds(r.total) for r in reports)),
        ("transport served", *("/".join(sorted(set(r.served_by))) for r in reports)),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(widths[i]) for i, cell in enumerate(row) if i
        ]
        lines.append("  ".join(cells))
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_demo(
    question: str = DEMO_QUESTION,
    *,
    model: str = "gpt-5.2",
    latency: str = "default",
    out: TextIO | None = None,
) -> list[RunReport]:
    """Run the demo; returns one report per transport (WebSocket first)."""
    try:
        from .testing import FakeResponsesServer, LatencyModel
    except ImportError as exc:  # the testing extra is missing; its message says what to run
        raise ConfigurationError(f"the demo runs against the built-in emulator; {exc}") from exc
    out = out or sys.stdout
    profile = {
        "default": LatencyModel(),
        "realistic": LatencyModel.realistic(),
        "instant": LatencyModel.instant(),
    }[latency]
    key = "sk-emulator-demo"
    out.write(
        "openai-ws demo: a tool-calling agent loop against the built-in emulator\n"
        f"(no API key, nothing leaves 127.0.0.1; latency model: {latency})\n"
    )
    reports = []
    for transport, title in (("websocket", "WebSocket mode"), ("sse", "HTTP streaming (SSE)")):
        out.write(f"\n== {title} ==\nyou: {question}\nassistant:\n")
        with (
            FakeResponsesServer(api_key=key, latency=profile) as server,
            Client(api_key=key, base_url=server.http_base_url, transport=transport) as client,
        ):
            report = _agent_loop(client, transport, question, model, out)
            report.requests = len(server.requests)
            report.bytes_uploaded = server.stats.bytes_in
        reports.append(report)
    out.write("\n" + _table(reports) + "\n")
    ws, sse = reports
    if sse.bytes_uploaded and sse.total:
        out.write(
            f"\nWebSocket mode sent {ws.bytes_uploaded / sse.bytes_uploaded:.0%} of the bytes "
            f"and took {ws.total / sse.total:.0%} of the time of HTTP streaming: after the first "
            "turn it sends only the new tool results, chained with previous_response_id.\n"
        )
    return reports


def run_chat(
    client: Client,
    model: str,
    *,
    transport: str | None = None,
    system: str | None = None,
    session_id: str = "chat",
    read: Callable[[str], str] = input,
    out: TextIO | None = None,
    tools: Mapping[str, tuple[Tool, Callable[[dict[str, Any]], str]]] | None = None,
) -> int:
    """An interactive chat loop. Ctrl-C while an answer streams abandons that answer and keeps
    the session; Ctrl-C or end of input at the prompt (or ``/quit``) ends the chat.

    *tools* maps a tool's name to the tool and the function that answers its calls; the
    model's calls are run, shown, and answered until it replies in text."""
    out = out or sys.stdout
    tools = tools or {}
    context = Context(system_prompt=system, tools=[tool for tool, _ in tools.values()])
    while True:
        try:
            line = read("you> ")
        except (EOFError, KeyboardInterrupt):
            out.write("\n")
            return 0
        if line.strip() in ("/quit", "/exit"):
            return 0
        if not line.strip():
            continue
        context.messages.append(UserMessage(line))
        calls = _chat_turn(client, model, context, transport, session_id, out)
        while calls:  # run what the model asked for, answer, and let it go on
            for call in calls:
                runner = tools.get(call.name)
                result = runner[1](call.arguments) if runner else f"unknown tool {call.name}"
                out.write(f"[tool] {call.name}({json.dumps(call.arguments)}) -> {result}\n")
                context.messages.append(ToolResultMessage(call.id, call.name, result))
            calls = _chat_turn(client, model, context, transport, session_id, out)


def _chat_turn(
    client: Client,
    model: str,
    context: Context,
    transport: str | None,
    session_id: str,
    out: TextIO,
) -> list[ToolCall]:
    """Stream one answer; return the tool calls it asks to be run (none when it is text)."""
    stream = client.stream(model, context, session_id=session_id, transport=transport)
    out.write("assistant> ")
    out.flush()
    try:
        for event in stream:
            if isinstance(event, TextDelta) and not event.commentary:
                out.write(event.delta)
                out.flush()
            elif isinstance(event, Done):
                context.messages.append(event.message)
            elif isinstance(event, Error):
                out.write(f"\n[error] {event.error.error_message}")
    except KeyboardInterrupt:
        stream.close()
        out.write("\n[interrupted: the answer was abandoned; the conversation goes on]")
        out.write("\n")
        return []
    out.write("\n")
    final = stream.final
    return final.message.tool_calls if isinstance(final, Done) else []


def _bench(argv: Sequence[str]) -> int:
    from ._bench import main as bench_main

    return bench_main(list(argv))


@contextlib.contextmanager
def _chat_client(args: argparse.Namespace) -> Iterator[Client]:
    if args.emulator:
        try:
            from .testing import FakeResponsesServer
        except ImportError as exc:  # the testing extra is missing; its message says what to run
            raise ConfigurationError(f"--emulator: {exc}") from exc

        with (
            FakeResponsesServer(api_key="sk-emulator-chat") as server,
            Client(api_key="sk-emulator-chat", base_url=server.http_base_url) as client,
        ):
            yield client
        return
    with Client(base_url=args.base_url) as client:
        client.api_key  # noqa: B018 - fail now, with a clear message, if there is no key
        yield client


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="openai-ws",
        description="The OpenAI Responses API over WebSocket mode, from synchronous Python.",
    )
    parser.add_argument("--version", action="version", version=f"openai-ws {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    demo = commands.add_parser(
        "demo", help="run an agent loop against the built-in emulator, over both transports"
    )
    demo.add_argument("--question", default=DEMO_QUESTION)
    demo.add_argument("--model", default="gpt-5.2")
    demo.add_argument(
        "--latency",
        choices=("default", "realistic", "instant"),
        default="default",
        help="the emulator's latency model (default: realistic magnitudes divided by 10)",
    )

    chat = commands.add_parser("chat", help="chat with the real API (OPENAI_API_KEY) or --emulator")
    chat.add_argument("--emulator", action="store_true", help="chat with the built-in emulator")
    chat.add_argument(
        "--base-url",
        default=None,
        help="the API base URL (default: OPENAI_BASE_URL or api.openai.com)",
    )
    chat.add_argument("--model", default="gpt-5.2")
    chat.add_argument("--transport", choices=("auto", "websocket", "sse"), default="auto")
    chat.add_argument("--system", default=None, help="a system prompt")

    commands.add_parser("bench", help="run the side-by-side benchmark (--quick, --only ...)")

    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["bench"]:  # its options are the benchmark's own
        return _bench(arguments[1:])
    args = parser.parse_args(arguments)
    try:
        if args.command == "demo":
            run_demo(args.question, model=args.model, latency=args.latency)
            return 0
        with _chat_client(args) as client:
            tools = CHAT_TOOLS if args.emulator else None
            if tools:
                print(
                    f"Tools: {', '.join(tools)} (try: What's the weather in Paris and Rome? "
                    "or: What time is it in Tokyo?)"
                )
            return run_chat(
                client, args.model, transport=args.transport, system=args.system, tools=tools
            )
    except ConfigurationError as exc:
        message = str(exc)
        if "OPENAI_API_KEY" in message and args.command == "chat":
            message += " (or run `openai-ws chat --emulator` to chat with the built-in emulator)"
        print(f"openai-ws {args.command}: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
