"""History hygiene: a call left without a result does not break the next turn."""

from openai_ws import Client, Context, Tool, UserMessage
from openai_ws.testing import FakeResponsesServer, FunctionCall, ScriptedModel

weather = Tool("get_weather", "Current weather", {"type": "object", "properties": {}})
script = ScriptedModel([FunctionCall("get_weather", {}), "OK, never mind the weather."])

with (
    FakeResponsesServer(model=script) as server,
    Client(api_key="sk-test", base_url=server.http_base_url) as client,
):
    ctx = Context(messages=[UserMessage("Weather?")], tools=[weather])
    message = client.stream("gpt-5.2", ctx).result()
    # the user moves on without running the tool: no ToolResultMessage
    ctx.messages += [message, UserMessage("Forget it.")]
    print(client.stream("gpt-5.2", ctx).result().text)
    synthetic = server.requests[-1].body["input"][2]
    print(synthetic["type"], synthetic["output"])  # a synthetic error result was sent
    assert synthetic["output"].startswith("Error: No result")
