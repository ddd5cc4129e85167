"""Every kind of output item, over both transports against the emulator: stream -> message ->
the next request. A full request gives the items back verbatim; a chained one sends only what
is new, and the emulator (which rejects what the API rejects) accepts both."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from openai_ws import (
    Client,
    Context,
    CustomTool,
    HostedTool,
    ServerItem,
    StreamOptions,
    Tool,
    ToolResultMessage,
    UserMessage,
)
from openai_ws.events import Done, HostedToolEvent, ToolCallDelta, ToolCallEnd, ToolCallStart
from openai_ws.testing import (
    HOSTED_PROGRESS,
    BuiltinCall,
    CustomCall,
    FakeResponsesServer,
    FunctionCall,
    HostedCall,
    LatencyModel,
    ParallelCall,
    ScriptedModel,
    Text,
)

WEATHER = Tool("weather", "Weather", {"type": "object", "properties": {"location": {}}})
ATTRACTIONS = Tool("cityAttractions", "Sights", {"type": "object", "properties": {"city": {}}})
SQL = CustomTool("write_sql", "SQL", {"type": "grammar", "syntax": "regex", "definition": ".+"})
SEARCH = HostedTool({"type": "web_search"})
SHELL = HostedTool({"type": "shell"})
PATCH = HostedTool({"type": "apply_patch"})


@pytest.fixture
def server() -> Iterator[FakeResponsesServer]:
    with FakeResponsesServer(latency=LatencyModel.instant()) as emulator:
        yield emulator


def run(
    server: FakeResponsesServer, ctx: Context, transport: str, *, full: bool = False
) -> list[Any]:
    """One turn on session "s"; *full* uses a fresh client (no chain: a full request)."""
    with Client(api_key="sk-roundtrip-1234", base_url=server.http_base_url) as client:
        return list(client.stream("m", ctx, session_id="s", transport=transport))


TRANSPORTS = ["websocket", "sse"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_hosted_items_are_kept_in_order_and_replayed_verbatim(
    server: FakeResponsesServer, transport: str
) -> None:
    server.model = ScriptedModel(
        [
            [
                HostedCall("web_search_call", {"action": {"type": "search", "query": "Berlin"}}),
                HostedCall("compaction", {"encrypted_content": "opaque"}),
                Text("Berlin is busy."),
            ],
            "ok",
        ]
    )
    ctx = Context(messages=[UserMessage("news?")], tools=[SEARCH])
    events = run(server, ctx, transport)
    progress = [(e.item_type, e.status) for e in events if isinstance(e, HostedToolEvent)]
    assert progress == [
        ("web_search_call", "in_progress"),
        ("web_search_call", "searching"),
        ("web_search_call", "completed"),
    ]
    message = events[-1].message
    assert [type(p).__name__ for p in message.content] == [
        "ServerItem",
        "ServerItem",
        "TextContent",
    ]
    search, compaction = message.server_items
    assert (search.type, search.status) == ("web_search_call", "completed")
    assert search.item["action"]["query"] == "Berlin"
    assert compaction.item["encrypted_content"] == "opaque"
    assert message.text == "Berlin is busy."
    assert server.requests[0].body["tools"] == [{"type": "web_search"}]
    # the next full request (a new client: no chain) replays both items verbatim
    ctx.messages += [message, UserMessage("more")]
    assert isinstance(run(server, ctx, transport)[-1], Done)
    sent = server.requests[-1].body["input"]
    assert "previous_response_id" not in server.requests[-1].body
    assert sent[1] == search.item
    assert sent[2] == compaction.item


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_custom_tool_call_and_its_output(server: FakeResponsesServer, transport: str) -> None:
    server.model = ScriptedModel(
        [CustomCall("write_sql", "SELECT * FROM users", call_id="call_sql"), "3 users."]
    )
    ctx = Context(messages=[UserMessage("how many?")], tools=[SQL])
    with Client(api_key="sk-roundtrip-1234", base_url=server.http_base_url) as client:
        events = list(client.stream("m", ctx, session_id="s", transport=transport))
        start = next(e for e in events if isinstance(e, ToolCallStart))
        assert start.tool_call.kind == "custom"
        deltas = "".join(e.delta for e in events if isinstance(e, ToolCallDelta))
        assert deltas == "SELECT * FROM users"
        end = next(e for e in events if isinstance(e, ToolCallEnd))
        assert end.tool_call.input == "SELECT * FROM users"
        message = events[-1].message
        assert message.stop_reason == "toolUse"
        (call,) = message.tool_calls
        assert (call.kind, call.name, call.input, call.arguments) == (
            "custom",
            "write_sql",
            "SELECT * FROM users",
            {},
        )
        assert server.requests[0].body["tools"] == [
            {
                "type": "custom",
                "name": "write_sql",
                "description": "SQL",
                "format": {"type": "grammar", "syntax": "regex", "definition": ".+"},
            }
        ]
        ctx.messages += [message, ToolResultMessage(call.id, call.name, "3")]
        assert client.stream("m", ctx, session_id="s", transport=transport).result().text == (
            "3 users."
        )
    body = server.requests[-1].body
    if transport == "websocket":  # chained on the socket: only the output
        assert body["input"] == [
            {"type": "custom_tool_call_output", "call_id": "call_sql", "output": "3"}
        ]
    else:  # store is False by default: HTTP resends everything
        assert body["input"][1] == {
            "type": "custom_tool_call",
            "call_id": "call_sql",
            "name": "write_sql",
            "input": "SELECT * FROM users",
        }
        assert body["input"][2]["type"] == "custom_tool_call_output"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_shell_and_apply_patch_calls_and_their_outputs(
    server: FakeResponsesServer, transport: str
) -> None:
    server.model = ScriptedModel(
        [
            [
                BuiltinCall("shell_call", {"commands": ["ls -a"], "max_output_length": 100}),
                BuiltinCall(
                    "apply_patch_call",
                    {"type": "update_file", "path": "a.py", "diff": "@@\n-a\n+b\n"},
                ),
            ],
            "Done.",
        ]
    )
    ctx = Context(messages=[UserMessage("fix it")], tools=[SHELL, PATCH])
    events = run(server, ctx, transport)
    message = events[-1].message
    shell, patch = message.tool_calls
    assert (shell.kind, shell.input["commands"]) == ("shell", ["ls -a"])
    assert (patch.kind, patch.input["path"]) == ("apply_patch", "a.py")
    assert "".join(e.delta for e in events if isinstance(e, ToolCallDelta)) == ""
    ctx.messages += [
        message,
        ToolResultMessage(shell.id, shell.name, "a.py\n"),
        ToolResultMessage(patch.id, patch.name, "patch failed", is_error=True),
    ]
    assert run(server, ctx, transport)[-1].message.text == "Done."
    sent = server.requests[-1].body["input"]
    assert sent[1] == shell.item
    assert sent[2] == patch.item
    assert sent[3] == {
        "type": "shell_call_output",
        "call_id": shell.call_id,
        "output": [{"stdout": "a.py\n", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}],
        "max_output_length": 100,
    }
    assert sent[4] == {
        "type": "apply_patch_call_output",
        "call_id": patch.call_id,
        "status": "failed",
        "output": "patch failed",
    }


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_computer_and_local_shell_outputs_take_the_structured_output(
    server: FakeResponsesServer, transport: str
) -> None:
    server.model = ScriptedModel(
        [
            [
                BuiltinCall("computer_call", {"type": "screenshot"}),
                BuiltinCall("local_shell_call", {"type": "exec", "command": ["ls"], "env": {}}),
            ],
            "Seen.",
        ]
    )
    computer_tool = {"type": "computer_use_preview", "display_width": 8, "display_height": 8}
    tools = [HostedTool(computer_tool), HostedTool({"type": "local_shell"})]
    ctx = Context(messages=[UserMessage("look")], tools=tools)
    message = run(server, ctx, transport)[-1].message
    computer, local = message.tool_calls
    screenshot = {"type": "computer_screenshot", "image_url": "data:image/png;base64,AAAA"}
    ctx.messages += [
        message,
        ToolResultMessage(computer.id, "computer", "", output=screenshot),
        ToolResultMessage(local.id, "local_shell", "", output={"stdout": "a.py"}),
    ]
    assert run(server, ctx, transport)[-1].message.text == "Seen."
    sent = server.requests[-1].body["input"]
    assert sent[3] == {
        "type": "computer_call_output",
        "call_id": computer.call_id,
        "output": screenshot,
    }
    assert sent[4] == {
        "type": "local_shell_call_output",
        "id": local.call_id,
        "output": json.dumps({"stdout": "a.py"}),
    }


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_parallel_wrapper_is_expanded_and_answered_in_both_forms(
    server: FakeResponsesServer, transport: str
) -> None:
    server.model = ScriptedModel(
        [
            ParallelCall(
                (
                    FunctionCall("weather", {"location": "SF"}),
                    FunctionCall("cityAttractions", {"city": "Rome"}),
                ),
                call_id="call_parallel",
            ),
            "Both done.",
            "Again.",
        ]
    )
    ctx = Context(messages=[UserMessage("SF and Rome?")], tools=[WEATHER, ATTRACTIONS])
    options = StreamOptions(store=True)  # so that HTTP chains too
    with Client(api_key="sk-roundtrip-1234", base_url=server.http_base_url) as client:
        message = client.stream(
            "m", ctx, session_id="s", transport=transport, options=options
        ).result()
        weather, sights = message.tool_calls
        assert (weather.name, weather.arguments) == ("weather", {"location": "SF"})
        assert (sights.name, sights.arguments) == ("cityAttractions", {"city": "Rome"})
        assert weather.call_id == "call_parallel#0"
        ctx.messages += [
            message,
            ToolResultMessage(weather.id, weather.name, "18C"),
            ToolResultMessage(sights.id, sights.name, "Colosseum"),
        ]
        chained = client.stream("m", ctx, session_id="s", transport=transport, options=options)
        assert chained.result().text == "Both done."
    # chained: the server holds the wrapper, so its one call id gets one output
    body = server.requests[-1].body
    assert body["previous_response_id"]
    assert body["input"] == [
        {
            "type": "function_call_output",
            "call_id": "call_parallel",
            "output": json.dumps(
                [
                    {"recipient_name": "functions.weather", "output": "18C"},
                    {"recipient_name": "functions.cityAttractions", "output": "Colosseum"},
                ]
            ),
        }
    ]
    # full (a new client): expanded pairs the API accepts
    ctx.messages.append(UserMessage("again"))
    assert run(server, ctx, transport)[-1].message.text == "Again."
    sent = server.requests[-1].body["input"]
    assert "previous_response_id" not in server.requests[-1].body
    assert [(i["type"], i["call_id"]) for i in sent[1:5]] == [
        ("function_call", "call_parallel#0"),
        ("function_call", "call_parallel#1"),
        ("function_call_output", "call_parallel#0"),
        ("function_call_output", "call_parallel#1"),
    ]
    assert sent[1]["name"] == "weather"
    assert json.loads(sent[2]["arguments"]) == {"city": "Rome"}


def test_a_wrapper_with_an_undeclared_recipient_stays_one_call(
    server: FakeResponsesServer,
) -> None:
    server.model = ScriptedModel(
        [ParallelCall((FunctionCall("weather", {}), FunctionCall("unknown", {})))]
    )
    ctx = Context(messages=[UserMessage("x")], tools=[WEATHER])
    (call,) = run(server, ctx, "sse")[-1].message.tool_calls
    assert call.name == "parallel"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_hygiene_answers_an_interrupted_call_so_the_next_turn_is_accepted(
    server: FakeResponsesServer, transport: str
) -> None:
    server.model = ScriptedModel([FunctionCall("weather", {"location": "SF"}), "Fine."])
    ctx = Context(messages=[UserMessage("weather?")], tools=[WEATHER])
    message = run(server, ctx, transport)[-1].message
    ctx.messages += [message, UserMessage("never mind")]  # no result: the user moved on
    assert run(server, ctx, transport)[-1].message.text == "Fine."
    sent = server.requests[-1].body["input"]
    assert sent[2]["type"] == "function_call_output"
    assert sent[2]["call_id"] == message.tool_calls[0].call_id
    assert sent[2]["output"].startswith("Error: No result")


def test_a_blank_call_id_is_a_value_error_before_anything_is_sent(
    server: FakeResponsesServer,
) -> None:
    from openai_ws import AssistantMessage, ToolCall

    bad = AssistantMessage([ToolCall(" | ", "weather")], stop_reason="toolUse")
    ctx = Context(messages=[UserMessage("x"), bad], tools=[WEATHER])
    with (
        Client(api_key="sk-roundtrip-1234", base_url=server.http_base_url) as client,
        pytest.raises(ValueError, match="blank tool call id"),
    ):
        client.stream("m", ctx, session_id="s")
    assert server.requests == []


def test_server_item_round_trip_is_exact_for_the_chain_planner() -> None:
    from openai_ws.convert import (
        build_assistant_message_from_response,
        convert_messages_to_input_items,
        output_items_to_input_items,
    )
    from openai_ws.messages import AssistantMessage

    output = [
        {"id": "mcpl_1", "type": "mcp_list_tools", "server_label": "x", "tools": []},
        {"id": "ws_1", "type": "web_search_call", "status": "completed", "action": {}},
    ]
    message = build_assistant_message_from_response({"output": output, "status": "completed"}, "m")
    assert all(isinstance(p, ServerItem) for p in message.content)
    assert isinstance(message, AssistantMessage)
    assert convert_messages_to_input_items([message]) == output_items_to_input_items(output)
    assert output_items_to_input_items(output) == output


HOSTED = [
    ("web_search_call", {"action": {"type": "search", "query": "q"}}),
    ("file_search_call", {"queries": ["q"], "results": None}),
    ("code_interpreter_call", {"code": "1+1", "container_id": "cntr_1", "outputs": None}),
    ("image_generation_call", {"result": "iVBORw0KGgo="}),
    ("mcp_call", {"name": "t", "server_label": "s", "arguments": "{}", "output": "x"}),
    ("mcp_list_tools", {"server_label": "s", "tools": []}),
    ("mcp_approval_request", {"name": "t", "server_label": "s", "arguments": "{}"}),
    ("compaction", {"encrypted_content": "gAAAA"}),
]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(("item_type", "fields"), HOSTED, ids=[h[0] for h in HOSTED])
def test_every_server_item_type_round_trips(
    server: FakeResponsesServer, transport: str, item_type: str, fields: dict[str, Any]
) -> None:
    server.model = ScriptedModel([[HostedCall(item_type, fields), Text("ok")], "next"])
    ctx = Context(messages=[UserMessage("go")])
    events = run(server, ctx, transport)
    message = events[-1].message
    (item,) = message.server_items
    assert item.type == item_type
    assert all(item.item[k] == v for k, v in fields.items())
    statuses = [e.status for e in events if isinstance(e, HostedToolEvent)]
    assert statuses == list(HOSTED_PROGRESS.get(item_type, ()))
    assert statuses or item_type in ("compaction", "mcp_approval_request")
    assert all(e.item_type == item_type for e in events if isinstance(e, HostedToolEvent))
    ctx.messages += [message, UserMessage("again")]
    assert run(server, ctx, transport)[-1].message.text == "next"
    assert server.requests[-1].body["input"][1] == item.item  # verbatim, in its place
