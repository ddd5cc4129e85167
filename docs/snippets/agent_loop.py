"""A tool-calling agent loop, here against the emulator (drop it for the real API)."""

from openai_ws import Client, Context, Tool, ToolResultMessage, UserMessage
from openai_ws.testing import FakeResponsesServer

weather = Tool(
    "get_weather", "Current weather", {"type": "object", "properties": {"city": {"type": "string"}}}
)
ctx = Context(
    system_prompt="You are terse.",
    messages=[UserMessage("Weather in Paris and Rome?")],
    tools=[weather],
)

with (
    FakeResponsesServer() as server,
    Client(api_key="sk-test", base_url=server.http_base_url) as client,
):
    while True:
        stream = client.stream("gpt-5.2", ctx, session_id="chat-42")
        for event in stream:
            if event.type == "text_delta":
                print(event.delta, end="", flush=True)
        # the last event is "done" or "error": result() returns the done event's message, or
        # raises the failed turn's typed error (AuthenticationError, RateLimitError, APIError...)
        message = stream.result()
        ctx.messages.append(message)
        if message.stop_reason != "toolUse":
            break
        for call in message.tool_calls:
            ctx.messages.append(ToolResultMessage(call.id, call.name, "18C, sunny"))
    print()
    # turn 1 sent the conversation; the next turns sent only the tool results
    print([("previous_response_id" in r.body, len(r.body["input"])) for r in server.requests])
    assert [("previous_response_id" in r.body) for r in server.requests] == [False, True, True]
