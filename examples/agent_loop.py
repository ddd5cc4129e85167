"""A tool-calling agent loop with openai-ws.

By default it runs against the built-in emulator (no key, no network beyond 127.0.0.1). With
--real it uses the real API (OPENAI_API_KEY, and OPENAI_BASE_URL if set).

    python examples/agent_loop.py
    python examples/agent_loop.py --real --model gpt-5.2
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator

from openai_ws import Client, Context, Tool, ToolResultMessage, UserMessage
from openai_ws.events import Done, Error, TextDelta, ToolCallEnd

WEATHER = {"Paris": "18C, sunny", "Rome": "24C, clear", "Oslo": "6C, rain"}


def get_weather(city: str) -> str:
    return WEATHER.get(city, "unknown city")


TOOLS = [
    Tool(
        "get_weather",
        "Current weather for a city",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )
]


@contextlib.contextmanager
def client_for(real: bool) -> Iterator[Client]:
    if real:
        with Client() as client:
            yield client
        return
    from openai_ws.testing import FakeResponsesServer

    with (
        FakeResponsesServer(api_key="sk-emulator") as server,
        Client(api_key="sk-emulator", base_url=server.http_base_url) as client,
    ):
        yield client


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="use the real API (OPENAI_API_KEY)")
    parser.add_argument("--model", default="gpt-5.2")
    parser.add_argument("--question", default="What's the weather in Paris, Rome and Oslo?")
    args = parser.parse_args()

    context = Context(
        system_prompt="You are a terse assistant. Use the tools.",
        messages=[UserMessage(args.question)],
        tools=TOOLS,
    )
    with client_for(args.real) as client:
        for turn in range(1, 11):
            stream = client.stream(args.model, context, session_id="agent-loop")
            for event in stream:
                if isinstance(event, TextDelta) and not event.commentary:
                    print(event.delta, end="", flush=True)
                elif isinstance(event, ToolCallEnd):
                    print(
                        f"[turn {turn} over {stream.transport}] calling "
                        f"{event.tool_call.name}({json.dumps(event.tool_call.arguments)})"
                    )
            if isinstance(event, Error):
                print(f"\nerror: {event.error.error_message}")
                return 1
            assert isinstance(event, Done)
            message = event.message
            context.messages.append(message)
            if message.stop_reason != "toolUse":
                print(f"\n[{turn} turns; the last over {stream.transport}]")
                return 0
            for call in message.tool_calls:
                result = get_weather(str(call.arguments.get("city", "")))
                context.messages.append(ToolResultMessage(call.id, call.name, result))
    print("\nstopped after 10 turns")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
