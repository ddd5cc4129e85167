"""A parallel wrapper call is expanded into the calls it stands for."""

from openai_ws import Client, Context, Tool, ToolResultMessage, UserMessage
from openai_ws.testing import FakeResponsesServer, FunctionCall, ParallelCall, ScriptedModel

tools = [
    Tool("weather", "Weather", {"type": "object", "properties": {"city": {"type": "string"}}}),
    Tool("sights", "Sights", {"type": "object", "properties": {"city": {"type": "string"}}}),
]
wrapper = ParallelCall(
    (FunctionCall("weather", {"city": "Rome"}), FunctionCall("sights", {"city": "Rome"}))
)
script = ScriptedModel([wrapper, "Sunny, and the Colosseum."])

with (
    FakeResponsesServer(model=script) as server,
    Client(api_key="sk-test", base_url=server.http_base_url) as client,
):
    ctx = Context(messages=[UserMessage("Rome: weather and sights?")], tools=tools)
    message = client.stream("gpt-5.2", ctx, session_id="rome").result()
    print([(call.name, call.arguments) for call in message.tool_calls])  # two calls, not one
    ctx.messages.append(message)
    for call, answer in zip(message.tool_calls, ["18C, sunny", "the Colosseum"], strict=True):
        ctx.messages.append(ToolResultMessage(call.id, call.name, answer))
    print(client.stream("gpt-5.2", ctx, session_id="rome").result().text)
    # chained on the socket: the server holds the wrapper, so it gets one output for it
    (sent,) = server.requests[-1].body["input"]
    print(sent["call_id"], sent["output"])
    assert sent["call_id"] == message.tool_calls[0].call_id.split("#")[0]
