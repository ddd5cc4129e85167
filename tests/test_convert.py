"""Messages and the pure conversions to and from the Responses API's JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openai_ws.convert import (
    TOOL_ERROR_PREFIX,
    build_assistant_message_from_response,
    convert_messages_to_input_items,
    convert_tools,
    output_items_to_input_items,
    usage_from_response,
)
from openai_ws.messages import (
    AssistantMessage,
    Context,
    ImageContent,
    ModelInfo,
    TextContent,
    ThinkingContent,
    Tool,
    ToolCall,
    ToolResultMessage,
    Usage,
    UserMessage,
    split_tool_call_id,
)
from openai_ws.protocol import ResponseAccumulator, parse_server_event
from tests.conftest import all_recorded_streams

WEATHER = Tool(
    "get_weather",
    "Current weather",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


# -- tools --------------------------------------------------------------------------------------


def test_tools_use_the_flat_shape() -> None:
    assert convert_tools([WEATHER, Tool("t", "d", {"type": "object"}, strict=True)]) == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Current weather",
            "parameters": WEATHER.parameters,
        },
        {
            "type": "function",
            "name": "t",
            "description": "d",
            "parameters": {"type": "object"},
            "strict": True,
        },
    ]


def test_convert_tools_rejects_other_objects() -> None:
    with pytest.raises(TypeError, match="Tool instances"):
        convert_tools([{"name": "x"}])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": "", "description": "d"}, ValueError),
        ({"name": 3, "description": "d"}, ValueError),
        ({"name": "n", "description": None}, TypeError),
        ({"name": "n", "description": "d", "parameters": "{}"}, TypeError),
    ],
)
def test_tool_validates(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        Tool(**kwargs)


# -- validation of messages ---------------------------------------------------------------------


def test_messages_validate_their_content() -> None:
    with pytest.raises(TypeError, match=r"UserMessage.content must be a str or list"):
        UserMessage(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"UserMessage.content\[0\] must be one of"):
        UserMessage(["text"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"AssistantMessage.content must be a list"):
        AssistantMessage(content="hi")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stop_reason"):
        AssistantMessage(stop_reason="done")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"ToolResultMessage\.tool_call_id"):
        ToolResultMessage(None, "t", "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Context.messages\[1\]"):
        Context(messages=[UserMessage("a"), "b"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="exactly one of"):
        ImageContent()
    with pytest.raises(ValueError, match="exactly one of"):
        ImageContent(data="AAAA", url="https://x")


def test_context_is_mutable_and_copies_sequences() -> None:
    messages = (UserMessage("a"),)
    ctx = Context("sys", messages, [WEATHER])  # type: ignore[arg-type]
    ctx.messages.append(UserMessage("b"))
    assert len(ctx.messages) == 2
    assert ctx.tools == [WEATHER]


def test_convert_rejects_foreign_messages() -> None:
    with pytest.raises(TypeError, match="messages must be"):
        convert_messages_to_input_items([{"role": "user", "content": "hi"}])  # type: ignore[list-item]


# -- user messages and tool results -------------------------------------------------------------


def test_user_text_and_images() -> None:
    items = convert_messages_to_input_items(
        [
            UserMessage("Hello"),
            UserMessage(
                [
                    TextContent("Look:"),
                    ImageContent(data="iVBORw0K", mime_type="image/png"),
                    ImageContent(url="https://example.invalid/cat.jpg", detail="low"),
                ]
            ),
        ]
    )
    assert items == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello"}]},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Look:"},
                {
                    "type": "input_image",
                    "image_url": "data:image/png;base64,iVBORw0K",
                    "detail": "auto",
                },
                {
                    "type": "input_image",
                    "image_url": "https://example.invalid/cat.jpg",
                    "detail": "low",
                },
            ],
        },
    ]


def test_tool_results() -> None:
    items = convert_messages_to_input_items(
        [
            ToolResultMessage("call_1|fc_1", "get_weather", "18C"),
            ToolResultMessage(
                "call_2", "get_weather", [TextContent("no "), TextContent("city")], is_error=True
            ),
            ToolResultMessage("call_3|", "shot", [TextContent("here"), ImageContent(data="QQ==")]),
            ToolResultMessage("call_4", "shot", [ImageContent(data="QQ==")], is_error=True),
        ]
    )
    assert items == [
        {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
        {
            "type": "function_call_output",
            "call_id": "call_2",
            "output": TOOL_ERROR_PREFIX + "no city",
        },
        {
            "type": "function_call_output",
            "call_id": "call_3",
            "output": [
                {"type": "input_text", "text": "here"},
                {
                    "type": "input_image",
                    "image_url": "data:image/png;base64,QQ==",
                    "detail": "auto",
                },
            ],
        },
        {
            "type": "function_call_output",
            "call_id": "call_4",
            "output": [
                {"type": "input_text", "text": "Error:"},
                {
                    "type": "input_image",
                    "image_url": "data:image/png;base64,QQ==",
                    "detail": "auto",
                },
            ],
        },
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("call_1|fc_1", ("call_1", "fc_1")),
        ("call_1", ("call_1", None)),
        ("call_1|", ("call_1", None)),
        ("call_1|  ", ("call_1", None)),
        (" call_1 | fc_1 ", ("call_1", "fc_1")),
        ("|fc_1", ("fc_1", "fc_1")),
        ("call_1|fc_1|extra", ("call_1", "fc_1|extra")),
        ("", ("", None)),
    ],
)
def test_split_tool_call_id(value: str, expected: tuple[str, str | None]) -> None:
    assert split_tool_call_id(value) == expected


# -- assistant replay ---------------------------------------------------------------------------


def test_assistant_replay_without_reasoning_drops_item_ids() -> None:
    message = AssistantMessage(
        content=[
            TextContent("Let me check.", item_id="msg_1", phase="commentary"),
            ToolCall(
                "call_1|fc_1", "get_weather", {"city": "Paris"}, raw_arguments='{"city":"Paris"}'
            ),
        ],
        stop_reason="toolUse",
    )
    assert convert_messages_to_input_items([message]) == [
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Let me check.", "annotations": []}],
            "status": "completed",
            "phase": "commentary",
        },
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
    ]


def test_assistant_replay_with_reasoning_keeps_ids_and_encrypted_content() -> None:
    message = AssistantMessage(
        content=[
            ThinkingContent("a\n\nb", item_id="rs_1", summary=("a", "b"), encrypted_content="gAAA"),
            ThinkingContent("not replayable", item_id="reasoning_other"),
            TextContent("Hi ", item_id="msg_1", phase="final_answer"),
            TextContent("there", item_id="msg_1", phase="final_answer"),
            TextContent("No.", item_id="msg_1", phase="final_answer", refusal=True),
            ToolCall("call_1|fc_1", "f", {"x": 1}),
        ]
    )
    assert convert_messages_to_input_items([message]) == [
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [
                {"type": "summary_text", "text": "a"},
                {"type": "summary_text", "text": "b"},
            ],
            "encrypted_content": "gAAA",
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Hi ", "annotations": []},
                {"type": "output_text", "text": "there", "annotations": []},
                {"type": "refusal", "refusal": "No."},
            ],
            "id": "msg_1",
            "status": "completed",
            "phase": "final_answer",
        },
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "f",
            "arguments": '{"x":1}',
        },
    ]


def test_thinking_without_summary_parts_replays_its_text() -> None:
    message = AssistantMessage(content=[ThinkingContent("plan", item_id="rs_2")])
    assert convert_messages_to_input_items([message]) == [
        {"type": "reasoning", "id": "rs_2", "summary": [{"type": "summary_text", "text": "plan"}]}
    ]


@pytest.mark.parametrize("stop_reason", ["error", "aborted"])
def test_failed_assistant_messages_are_not_replayed(stop_reason: str) -> None:
    message = AssistantMessage(content=[TextContent("partial")], stop_reason=stop_reason)  # type: ignore[arg-type]
    assert convert_messages_to_input_items([UserMessage("q"), message])[1:] == []


def test_text_items_split_on_item_or_phase_change() -> None:
    message = AssistantMessage(
        content=[
            TextContent("a", item_id="m1"),
            TextContent("b", item_id="m2"),
            TextContent("c", item_id="m2", phase="x"),
        ]
    )
    items = convert_messages_to_input_items([message])
    assert [len(i["content"]) for i in items] == [1, 1, 1]


def test_malformed_tool_arguments_are_kept_raw() -> None:
    message = build_assistant_message_from_response(
        {
            "status": "completed",
            "output": [
                {
                    "type": "function_call",
                    "id": "fc_1",
                    "call_id": "call_1",
                    "name": "f",
                    "arguments": '{"a": 1',
                }
            ],
        },
        "m",
    )
    (call,) = message.tool_calls
    assert call.arguments == {}
    assert call.raw_arguments == '{"a": 1'
    assert not call.arguments_valid
    assert call.arguments_json == '{"a": 1'
    assert convert_messages_to_input_items([message])[0]["arguments"] == '{"a": 1'


def test_tool_call_properties() -> None:
    call = ToolCall("call_1|fc_1", "f", {"b": [1, "é"]})
    assert (call.call_id, call.item_id) == ("call_1", "fc_1")
    assert call.arguments_json == '{"b":[1,"é"]}'
    assert call.arguments_valid
    assert ToolCall("c", "f", raw_arguments="[1]").arguments_valid is False


# -- building messages from responses -----------------------------------------------------------


def response_from(name: str) -> dict[str, Any]:
    (stream,) = [s for n, s in all_recorded_streams() if n == name]
    acc = ResponseAccumulator()
    for event in stream:
        acc.feed(parse_server_event(event))
    return acc.response


def test_build_from_tool_call_recording() -> None:
    response = response_from("issue-19493-gpt-5.1-tool-call")
    message = build_assistant_message_from_response(response, ModelInfo("gpt-5.1"))
    assert message.stop_reason == "toolUse"
    (call,) = message.tool_calls
    assert (
        call.id
        == "call_2FQdm3Br7Qb35YUBSkDR7kue|fc_0775572d10a16b66006a8d8528e8a887d2a32ef76463d40c98"
    )
    assert (call.name, call.arguments) == ("get_weather", {"city": "Beijing"})
    assert message.response_id == response["id"]
    assert message.model == "gpt-5.1"
    assert message.api == "openai-responses"


def test_build_from_phase_recording_separates_commentary() -> None:
    message = build_assistant_message_from_response(
        response_from("openai-phase.1"), "gpt-5.3-codex"
    )
    assert message.stop_reason == "stop"
    assert message.text == "The capital of France is Paris."
    assert message.commentary == "I'm going to search for that"
    assert [p.phase for p in message.content if isinstance(p, TextContent)] == [
        "commentary",
        "final_answer",
    ]


def test_build_from_reasoning_recording_keeps_summary_and_encrypted_content() -> None:
    message = build_assistant_message_from_response(
        response_from("azure-gpt5-reasoning-multi-summary-with-encryption"), "gpt-5"
    )
    (thinking,) = [p for p in message.content if isinstance(p, ThinkingContent)]
    assert len(thinking.summary) == 6
    assert thinking.thinking == "\n\n".join(thinking.summary)
    assert thinking.encrypted_content
    assert thinking.encrypted_content.startswith("AZURE_FIXTURE_CANONICAL")
    assert message.thinking == thinking.thinking
    assert message.text == "Anonymized assistant response text."


def test_build_from_web_search_keeps_text_and_skips_hosted_items() -> None:
    message = build_assistant_message_from_response(response_from("openai-web-search-tool.1"), "m")
    assert [type(p).__name__ for p in message.content].count("TextContent") == 1
    (text,) = [p for p in message.content if isinstance(p, TextContent)]
    assert len(text.annotations) == 6
    assert message.stop_reason == "stop"


def test_usage_from_recording() -> None:
    response = response_from("openai-compaction.1")
    usage = build_assistant_message_from_response(response, "m").usage
    assert usage == Usage(
        input=51097 - 49792, output=2505, cache_read=49792, cache_write=0, total_tokens=53602
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, Usage()),
        ({"input_tokens": 10, "output_tokens": 5}, Usage(input=10, output=5, total_tokens=15)),
        (
            {"input_tokens": 10, "output_tokens": 5, "total_tokens": 0},
            Usage(input=10, output=5, total_tokens=15),
        ),
        (
            {
                "input_tokens": 10,
                "output_tokens": 5,
                "input_tokens_details": {"cached_tokens": 4},
                "total_tokens": 15,
            },
            Usage(input=6, output=5, cache_read=4, total_tokens=15),
        ),
        (
            {
                "input_tokens": "x",
                "output_tokens": True,
                "input_tokens_details": {"cached_tokens": 99},
            },
            Usage(),
        ),
        (
            {"input_tokens": 3, "input_tokens_details": {"cached_tokens": 9}},
            Usage(input=0, cache_read=3, total_tokens=3),
        ),
    ],
)
def test_usage_rules(raw: dict[str, Any] | None, expected: Usage) -> None:
    assert usage_from_response(raw) == expected


def test_cost_from_model_rates() -> None:
    model = ModelInfo("m", input_cost=2.0, output_cost=10.0, cache_read_cost=0.5)
    usage = usage_from_response(
        {
            "input_tokens": 1_000_000,
            "output_tokens": 100_000,
            "input_tokens_details": {"cached_tokens": 500_000},
        },
        model,
    )
    assert usage.cost.input == pytest.approx(1.0)
    assert usage.cost.output == pytest.approx(1.0)
    assert usage.cost.cache_read == pytest.approx(0.25)
    assert usage.cost.total == pytest.approx(2.25)


@pytest.mark.parametrize(
    ("response", "stop_reason", "error_message"),
    [
        ({"status": "completed", "output": []}, "stop", None),
        ({"output": []}, "stop", None),
        (
            {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}},
            "length",
            None,
        ),
        ({"status": "incomplete"}, "length", None),
        (
            {"status": "incomplete", "incomplete_details": {"reason": "content_filter"}},
            "error",
            "response incomplete: content_filter",
        ),
        (
            {"status": "failed", "error": {"code": "server_error", "message": "boom"}},
            "error",
            "boom",
        ),
        ({"status": "failed"}, "error", "response failed"),
        ({"status": "cancelled"}, "error", "response cancelled"),
        ({"status": "in_progress"}, "error", "response did not finish (status: in_progress)"),
    ],
)
def test_stop_reasons(
    response: dict[str, Any], stop_reason: str, error_message: str | None
) -> None:
    message = build_assistant_message_from_response(response, "m")
    assert (message.stop_reason, message.error_message) == (stop_reason, error_message)


def test_junk_output_entries_are_skipped() -> None:
    message = build_assistant_message_from_response(
        {
            "status": "completed",
            "output": [
                "junk",
                {
                    "type": "message",
                    "content": [
                        "junk",
                        {"type": "output_text", "text": 5},
                        {"type": "output_text", "text": "ok"},
                    ],
                },
                {"type": "message", "content": "not a list"},
                {"type": "reasoning", "summary": [{"text": "s"}, "junk"], "content": [{"text": 1}]},
                {"type": "function_call", "arguments": None, "name": None},
            ],
        },
        "m",
    )
    assert message.text == "ok"
    assert message.thinking == "s"
    assert message.tool_calls == [ToolCall("|", "", {}, raw_arguments="")]


# -- the round trip the chain planner relies on -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "stream"), all_recorded_streams(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_output_items_replay_exactly_like_the_message_built_from_them(
    name: str, stream: list[dict[str, Any]]
) -> None:
    acc = ResponseAccumulator()
    for event in stream:
        acc.feed(parse_server_event(event))
    output = acc.response["output"]
    message = build_assistant_message_from_response(acc.response, "m")
    if message.stop_reason in ("error", "aborted"):
        assert convert_messages_to_input_items([message]) == []
        return
    assert output_items_to_input_items(output) == convert_messages_to_input_items([message])
    json.dumps(output_items_to_input_items(output))  # what we replay is plain JSON


def test_optional_string_fields_are_checked() -> None:
    with pytest.raises(TypeError, match=r"TextContent\.item_id must be a str or None"):
        TextContent("x", item_id=5)  # type: ignore[arg-type]


def test_refusal_output_becomes_refusal_text() -> None:
    message = build_assistant_message_from_response(
        {
            "status": "completed",
            "output": [
                {
                    "type": "message",
                    "id": "msg_1",
                    "content": [{"type": "refusal", "refusal": "I can't."}],
                }
            ],
        },
        "m",
    )
    (part,) = message.content
    assert isinstance(part, TextContent)
    assert (part.text, part.refusal, message.text) == ("I can't.", True, "I can't.")
    assert output_items_to_input_items(
        [
            {
                "type": "message",
                "id": "msg_1",
                "content": [{"type": "refusal", "refusal": "I can't."}],
            }
        ]
    ) == [
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "refusal", "refusal": "I can't."}],
            "status": "completed",
        }
    ]


# -- one home per rule (issue 17): the helpers the stream builder shares ---------------------


def test_join_is_the_inverse_of_split() -> None:
    from openai_ws.messages import join_tool_call_id

    for call_id, item_id in (("call_1", "fc_1"), ("call_1", None), ("", "fc_1"), (None, None)):
        joined = join_tool_call_id(call_id, item_id)
        back = split_tool_call_id(joined)
        assert back == ((call_id or item_id or ""), item_id or None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("", {}), ("  ", {}), ('{"a": 1}', {"a": 1}), ("[1]", {}), ("{bad", {}), ("3", {})],
)
def test_parse_tool_arguments(raw: str, expected: dict[str, Any]) -> None:
    from openai_ws.convert import parse_tool_arguments

    assert parse_tool_arguments(raw) == expected


def test_reasoning_text_prefers_the_summary_over_raw_text() -> None:
    from openai_ws.convert import reasoning_text

    summary = [{"type": "summary_text", "text": "a"}, {"type": "summary_text", "text": "b"}]
    raw = [{"type": "reasoning_text", "text": "raw"}]
    assert reasoning_text({"summary": summary, "content": raw}) == "a\n\nb"
    assert reasoning_text({"summary": [], "content": raw}) == "raw"
    assert reasoning_text({"summary": []}) is None


# -- the whole Responses API (issue 12) -------------------------------------------------------

from openai_ws.convert import (  # noqa: E402
    content_from_item,
)
from openai_ws.messages import CustomTool, HostedTool, ServerItem  # noqa: E402


def test_convert_tools_for_every_tool_kind() -> None:
    tools = [
        Tool("f", "d", {"type": "object"}, strict=True),
        CustomTool("sql"),
        CustomTool("lark", "grammar", {"type": "grammar", "syntax": "lark", "definition": "x"}),
        HostedTool({"type": "file_search", "vector_store_ids": ["vs_1"]}),
    ]
    assert convert_tools(tools) == [
        {"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"},
         "strict": True},
        {"type": "custom", "name": "sql"},
        {"type": "custom", "name": "lark", "description": "grammar",
         "format": {"type": "grammar", "syntax": "lark", "definition": "x"}},
        {"type": "file_search", "vector_store_ids": ["vs_1"]},
    ]  # fmt: skip
    with pytest.raises(TypeError, match="CustomTool or HostedTool"):
        convert_tools([{"type": "web_search"}])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: HostedTool({"name": "x"}), ValueError),
        (lambda: HostedTool({"type": "function"}), ValueError),
        (lambda: CustomTool(""), ValueError),
        (lambda: CustomTool("x", format={"syntax": "lark"}), ValueError),
        (lambda: ServerItem({"id": "x"}), ValueError),
        (lambda: ToolCall("c|", "f", kind="bash"), ValueError),
        (lambda: ToolResultMessage("c", "f", "x", output="text"), TypeError),
    ],
)
def test_new_value_objects_validate_at_construction(build: Any, error: type) -> None:
    with pytest.raises(error):
        build()


#: one sample of every output item type the API defines, and what it becomes
ITEMS: list[tuple[dict[str, Any], str, str | None]] = [
    ({"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "f", "arguments": "{}"},
     "ToolCall", "function"),
    ({"type": "custom_tool_call", "id": "ctc_1", "call_id": "c2", "name": "sql", "input": "SELECT"},
     "ToolCall", "custom"),
    ({"type": "shell_call", "id": "sh_1", "call_id": "c3", "status": "completed",
      "action": {"commands": ["ls"]}}, "ToolCall", "shell"),
    ({"type": "local_shell_call", "id": "lsh_1", "call_id": "c4", "status": "completed",
      "action": {"type": "exec", "command": ["ls"], "env": {}}}, "ToolCall", "local_shell"),
    ({"type": "apply_patch_call", "id": "apc_1", "call_id": "c5", "status": "completed",
      "operation": {"type": "delete_file", "path": "a"}}, "ToolCall", "apply_patch"),
    ({"type": "computer_call", "id": "cu_1", "call_id": "c6", "status": "completed",
      "action": {"type": "click", "x": 1, "y": 2, "button": "left"},
      "pending_safety_checks": []}, "ToolCall", "computer"),
    ({"type": "web_search_call", "id": "ws_1", "status": "completed",
      "action": {"type": "search", "query": "q"}}, "ServerItem", None),
    ({"type": "file_search_call", "id": "fs_1", "status": "completed", "queries": ["q"],
      "results": None}, "ServerItem", None),
    ({"type": "code_interpreter_call", "id": "ci_1", "status": "completed", "code": "1+1",
      "container_id": "cntr_1", "outputs": None}, "ServerItem", None),
    ({"type": "image_generation_call", "id": "ig_1", "status": "completed", "result": "AAAA"},
     "ServerItem", None),
    ({"type": "mcp_call", "id": "mcp_1", "name": "t", "server_label": "s", "arguments": "{}",
      "output": "x"}, "ServerItem", None),
    ({"type": "mcp_list_tools", "id": "mcpl_1", "server_label": "s", "tools": []},
     "ServerItem", None),
    ({"type": "mcp_approval_request", "id": "mcpr_1", "name": "t", "server_label": "s",
      "arguments": "{}"}, "ServerItem", None),
    ({"type": "compaction", "id": "cmp_1", "encrypted_content": "gAAA"}, "ServerItem", None),
    ({"type": "some_future_item", "id": "x_1"}, "ServerItem", None),
]  # fmt: skip


@pytest.mark.parametrize(("item", "part", "kind"), ITEMS, ids=[i[0]["type"] for i in ITEMS])
def test_every_output_item_type_maps_and_round_trips(
    item: dict[str, Any], part: str, kind: str | None
) -> None:
    (content,) = content_from_item(item)
    assert type(content).__name__ == part
    if isinstance(content, ToolCall):
        assert content.kind == kind
        assert content.item == item
        assert content.call_id == item["call_id"]
        if kind not in ("function", "custom"):
            assert content.input == item.get("action", item.get("operation"))
            assert content.name == kind
    else:
        assert isinstance(content, ServerItem)
        assert (content.type, content.id, content.item) == (item["type"], item["id"], item)
    replayed = output_items_to_input_items([item])
    message = build_assistant_message_from_response({"output": [item]}, "m")
    assert convert_messages_to_input_items([message]) == replayed
    if part == "ServerItem" or kind not in ("function", "custom"):
        assert replayed == [item]  # verbatim


RESULTS: list[tuple[str, ToolResultMessage, dict[str, Any]]] = [
    ("function", ToolResultMessage("c1", "f", "ok"),
     {"type": "function_call_output", "call_id": "c1", "output": "ok"}),
    ("function", ToolResultMessage("c1", "f", "", output=[{"type": "input_text", "text": "a"}]),
     {"type": "function_call_output", "call_id": "c1",
      "output": [{"type": "input_text", "text": "a"}]}),
    ("custom", ToolResultMessage("c2", "sql", "3 rows", is_error=True),
     {"type": "custom_tool_call_output", "call_id": "c2", "output": "Error: 3 rows"}),
    ("shell", ToolResultMessage("c3", "shell", "boom", is_error=True),
     {"type": "shell_call_output", "call_id": "c3",
      "output": [{"stdout": "", "stderr": "boom", "outcome": {"type": "exit", "exit_code": 1}}]}),
    ("shell", ToolResultMessage("c3", "shell", "", output=[{"stdout": "x", "stderr": "",
                                                             "outcome": {"type": "timeout"}}]),
     {"type": "shell_call_output", "call_id": "c3",
      "output": [{"stdout": "x", "stderr": "", "outcome": {"type": "timeout"}}]}),
    ("local_shell", ToolResultMessage("c4", "local_shell", "a\nb"),
     {"type": "local_shell_call_output", "id": "c4", "output": "a\nb"}),
    ("apply_patch", ToolResultMessage("c5", "apply_patch", "done"),
     {"type": "apply_patch_call_output", "call_id": "c5", "status": "completed",
      "output": "done"}),
    ("computer", ToolResultMessage("c6", "computer", [ImageContent(url="https://x/s.png")]),
     {"type": "computer_call_output", "call_id": "c6",
      "output": {"type": "computer_screenshot", "image_url": "https://x/s.png"}}),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "result", "expected"), RESULTS, ids=[r[0] for r in RESULTS])
def test_a_result_is_the_output_item_its_calls_kind_needs(
    kind: str, result: ToolResultMessage, expected: dict[str, Any]
) -> None:
    (item,) = [i for i, _, k in ITEMS if k == kind]
    call_message = build_assistant_message_from_response({"output": [item]}, "m")
    items = convert_messages_to_input_items([call_message, result])
    assert items[-1] == expected


def test_a_computer_result_without_a_screenshot_is_a_value_error() -> None:
    (item,) = [i for i, _, k in ITEMS if k == "computer"]
    call_message = build_assistant_message_from_response({"output": [item]}, "m")
    with pytest.raises(ValueError, match="computer"):
        convert_messages_to_input_items([call_message, ToolResultMessage("c6", "computer", "x")])


def test_calls_built_in_code_are_replayed_from_their_fields() -> None:
    message = AssistantMessage(
        [
            ToolCall("c1|", "sql", kind="custom", input="SELECT 1"),
            ToolCall("c2|", "shell", kind="shell", input={"commands": ["ls"]}),
            ToolCall("c3|", "apply_patch", kind="apply_patch", input={"type": "delete_file"}),
        ],
        stop_reason="toolUse",
    )
    assert convert_messages_to_input_items([message]) == [
        {"type": "custom_tool_call", "call_id": "c1", "name": "sql", "input": "SELECT 1"},
        {"type": "shell_call", "call_id": "c2", "action": {"commands": ["ls"]},
         "status": "completed"},
        {"type": "apply_patch_call", "call_id": "c3", "operation": {"type": "delete_file"},
         "status": "completed"},
    ]  # fmt: skip


def test_the_wrapper_expands_only_with_declared_tools_and_round_trips() -> None:
    arguments = json.dumps(
        {"tool_uses": [{"recipient_name": "functions.a", "parameters": {"x": 1}},
                       {"recipient_name": "functions.b", "parameters": {}}]}
    )  # fmt: skip
    item = {"type": "function_call", "id": "fc_p", "call_id": "call_p", "name": "parallel",
            "arguments": arguments}  # fmt: skip
    tools = [{"type": "function", "name": "a"}, {"type": "function", "name": "b"}]
    response = {"output": [item], "status": "completed", "tools": tools}
    message = build_assistant_message_from_response(response, "m")  # the echoed tools
    assert [(c.id, c.name, c.arguments) for c in message.tool_calls] == [
        ("call_p#0|", "a", {"x": 1}),
        ("call_p#1|", "b", {}),
    ]
    assert message.tool_calls[0].item == item
    assert build_assistant_message_from_response(response, "m", tools=[]).tool_calls[0].name == (
        "parallel"
    )
    replayed = output_items_to_input_items([item], tools=tools)
    assert replayed == convert_messages_to_input_items([message])
    assert replayed == [
        {"type": "function_call", "call_id": "call_p#0", "name": "a", "arguments": '{"x":1}'},
        {"type": "function_call", "call_id": "call_p#1", "name": "b", "arguments": "{}"},
    ]


def test_a_built_in_call_the_server_ran_is_a_server_item() -> None:
    # a shell in a hosted container: the response holds the call and its output
    call = {"type": "shell_call", "id": "sh_1", "call_id": "c1", "action": {"commands": ["ls"]},
            "status": "completed"}  # fmt: skip
    output = {"type": "shell_call_output", "id": "sho_1", "call_id": "c1", "output": []}
    message = build_assistant_message_from_response(
        {"output": [call, output], "status": "completed"}, "m"
    )
    assert message.tool_calls == []
    assert message.stop_reason == "stop"
    assert [p.item for p in message.server_items] == [call, output]
    assert output_items_to_input_items([call, output]) == [call, output]
