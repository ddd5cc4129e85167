"""Custom (freeform) tools and built-in client tools: each call has a kind, and its result goes
back as the output item that kind needs."""

from openai_ws import Client, Context, CustomTool, HostedTool, ToolResultMessage, UserMessage
from openai_ws.testing import BuiltinCall, CustomCall, FakeResponsesServer, ScriptedModel

grammar = {"type": "grammar", "syntax": "regex", "definition": r"SELECT .+"}
script = ScriptedModel(
    [
        [
            CustomCall("write_sql", "SELECT count(*) FROM users"),
            BuiltinCall("shell_call", {"commands": ["wc -l users.csv"]}),
        ],
        "There are 42 users.",
    ]
)

with (
    FakeResponsesServer(model=script) as server,
    Client(api_key="sk-test", base_url=server.http_base_url) as client,
):
    ctx = Context(
        messages=[UserMessage("How many users?")],
        tools=[
            CustomTool("write_sql", "Write one SQL query", grammar),
            HostedTool({"type": "shell"}),
        ],
    )
    message = client.stream("gpt-5.2", ctx, session_id="sql").result()
    ctx.messages.append(message)
    for call in message.tool_calls:
        print(call.kind, call.name, call.input)
        if call.kind == "custom":  # free text in .input, not JSON arguments
            ctx.messages.append(ToolResultMessage(call.id, call.name, "42"))
        elif call.kind == "shell":  # the action's commands; structured output goes verbatim
            result = [{"stdout": "42 users.csv\n", "stderr": "",
                       "outcome": {"type": "exit", "exit_code": 0}}]  # fmt: skip
            ctx.messages.append(ToolResultMessage(call.id, call.name, "", output=result))
    print(client.stream("gpt-5.2", ctx, session_id="sql").result().text)
    sent = [item["type"] for item in server.requests[-1].body["input"]]
    print(sent)  # over WebSocket, only the two outputs: the socket holds the rest
    assert sent == ["custom_tool_call_output", "shell_call_output"]
