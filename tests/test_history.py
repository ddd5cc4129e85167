"""History hygiene and parallel wrappers (openai_ws.history): pure, table-driven."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from openai_ws.history import (
    MISSING_RESULT_TEXT,
    collapse_wrapper_outputs,
    declared_function_names,
    prepare_history,
    sub_call_id,
    wrapper_uses,
)
from openai_ws.messages import (
    AssistantMessage,
    Message,
    TextContent,
    ToolCall,
    ToolResultMessage,
    UserMessage,
)


def call(call_id: str, name: str = "f") -> ToolCall:
    return ToolCall(f"{call_id}|fc_{call_id}", name)


def asks(*calls: ToolCall, stop: str = "toolUse") -> AssistantMessage:
    return AssistantMessage(list(calls), stop_reason=stop)  # type: ignore[arg-type]


def result(call_id: str, text: str = "ok") -> ToolResultMessage:
    return ToolResultMessage(call_id, "f", text)


def shape(messages: list[Message]) -> list[str]:
    """A compact picture: U (user), A(ids) (assistant calls), R:id (result), E:id (synthetic)."""
    out = []
    for message in messages:
        if isinstance(message, UserMessage):
            out.append("U")
        elif isinstance(message, AssistantMessage):
            out.append("A(" + ",".join(c.call_id for c in message.tool_calls) + ")")
        else:
            synthetic = message.is_error and message.content == MISSING_RESULT_TEXT
            out.append(("E:" if synthetic else "R:") + message.tool_call_id.partition("|")[0])
    return out


U = UserMessage("hi")

CASES: list[tuple[str, list[Message], list[str]]] = [
    ("clean history is unchanged", [U, asks(call("a")), result("a"), U], ["U", "A(a)", "R:a", "U"]),
    ("a call left before the next user", [U, asks(call("a")), U], ["U", "A(a)", "E:a", "U"]),
    ("a call left at the end", [U, asks(call("a"))], ["U", "A(a)", "E:a"]),
    (
        "only the missing one of two",
        [U, asks(call("a"), call("b")), result("b"), U],
        ["U", "A(a,b)", "R:b", "E:a", "U"],
    ),
    (
        "before the next assistant message",
        [U, asks(call("a")), AssistantMessage([TextContent("x")]), U],
        ["U", "A(a)", "E:a", "A()", "U"],
    ),
    ("an orphan result is dropped", [U, result("zz"), U], ["U", "U"]),
    (
        "a result of a call that was not replayed (error) is an orphan",
        [U, asks(call("a"), stop="error"), result("a"), U],
        ["U", "A(a)", "U"],
    ),
    (
        "a bare call id pairs with a joined one",
        [U, asks(call("a")), ToolResultMessage("a", "f", "ok")],
        ["U", "A(a)", "R:a"],
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("messages", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_prepare_history(messages: list[Message], expected: list[str]) -> None:
    before = list(messages)
    assert shape(prepare_history(messages)) == expected
    assert messages == before  # a new list; the caller's is untouched


def test_a_synthetic_result_is_an_error_result_for_the_same_call() -> None:
    out = prepare_history([U, asks(call("a", "weather"))])
    synthetic = out[-1]
    assert isinstance(synthetic, ToolResultMessage)
    assert (synthetic.tool_call_id, synthetic.tool_name) == ("a|fc_a", "weather")
    assert synthetic.is_error


def test_an_orphan_is_logged_at_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="openai_ws"):
        prepare_history([U, ToolResultMessage("call_gone", "weather", "x")])
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "call_gone" in record.getMessage()
    assert "weather" in record.getMessage()


@pytest.mark.parametrize("bad", ["", " ", "|", " | ", "\t|\n"])
def test_blank_ids_are_value_errors(bad: str) -> None:
    with pytest.raises(ValueError, match="blank tool call id"):
        prepare_history([U, asks(ToolCall(bad, "f"))])
    with pytest.raises(ValueError, match="blank tool call id"):
        prepare_history([U, asks(call("a")), ToolResultMessage(bad, "f", "x")])


def test_a_blank_id_in_a_message_that_is_not_replayed_is_ignored() -> None:
    assert shape(prepare_history([U, asks(ToolCall("", "f"), stop="aborted"), U])) == [
        "U",
        "A()",
        "U",
    ]


# -- parallel wrappers ---------------------------------------------------------------------


def wrapper(uses: Any, name: str = "parallel", call_id: str = "call_p") -> dict[str, Any]:
    arguments = uses if isinstance(uses, str) else json.dumps({"tool_uses": uses})
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}


def use(name: str, **parameters: Any) -> dict[str, Any]:
    return {"recipient_name": name, "parameters": parameters}


DECLARED = frozenset({"weather", "sights"})

WRAPPERS: list[tuple[str, dict[str, Any], Any]] = [
    ("expanded", wrapper([use("functions.weather", city="SF"), use("functions.sights")]),
     [("weather", {"city": "SF"}), ("sights", {})]),
    ("the prefix is optional", wrapper([use("weather")]), [("weather", {})]),
    ("multi_tool_use.parallel", wrapper([use("functions.weather")], "multi_tool_use.parallel"),
     [("weather", {})]),
    ("an undeclared recipient", wrapper([use("functions.weather"), use("functions.other")]), None),
    ("not a wrapper", {"type": "function_call", "name": "weather", "arguments": "{}"}, None),
    ("no uses", wrapper([]), None),
    ("bad JSON", wrapper("{"), None),
    ("parameters not an object", wrapper([{"recipient_name": "weather", "parameters": [1]}]), None),
    ("a custom call", {"type": "custom_tool_call", "name": "parallel", "input": "x"}, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("item", "expected"), [w[1:] for w in WRAPPERS], ids=[w[0] for w in WRAPPERS]
)
def test_wrapper_uses(item: dict[str, Any], expected: Any) -> None:
    assert wrapper_uses(item, DECLARED) == expected


def test_a_declared_tool_named_parallel_is_never_expanded() -> None:
    item = wrapper([use("functions.weather")])
    assert wrapper_uses(item, DECLARED | {"parallel"}) is None


def test_declared_function_names() -> None:
    tools = [
        {"type": "function", "name": "a"},
        {"type": "custom", "name": "b"},
        {"type": "web_search"},
        "junk",
    ]
    assert declared_function_names(tools) == {"a"}
    assert declared_function_names(None) == frozenset()


def test_collapse_merges_the_sub_outputs_in_the_wrappers_order() -> None:
    previous = [wrapper([use("functions.weather"), use("functions.sights")])]
    items = [
        {"type": "function_call_output", "call_id": sub_call_id("call_p", 1), "output": "Rome"},
        {"type": "function_call_output", "call_id": "call_other", "output": "x"},
        {"type": "function_call_output", "call_id": sub_call_id("call_p", 0), "output": "18C"},
        {"type": "message", "role": "user", "content": "thanks"},
    ]
    out = collapse_wrapper_outputs(items, previous)
    assert [i.get("call_id") for i in out] == ["call_p", "call_other", None]
    assert json.loads(out[0]["output"]) == [
        {"recipient_name": "functions.weather", "output": "18C"},
        {"recipient_name": "functions.sights", "output": "Rome"},
    ]


def test_collapse_without_wrappers_changes_nothing() -> None:
    items = [{"type": "function_call_output", "call_id": "call_p#0", "output": "x"}]
    assert collapse_wrapper_outputs(items, [{"type": "message"}]) == items


def test_collapse_keeps_text_of_content_part_outputs() -> None:
    previous = [wrapper([use("weather")])]
    parts = [{"type": "input_text", "text": "a"}, {"type": "input_image", "image_url": "u"}]
    out = collapse_wrapper_outputs(
        [{"type": "function_call_output", "call_id": "call_p#0", "output": parts}], previous
    )
    assert json.loads(out[0]["output"]) == [{"recipient_name": "weather", "output": "a"}]


def test_synthetic_results_convert_for_every_kind_of_call() -> None:
    from openai_ws.convert import convert_messages_to_input_items

    kinds = ["function", "custom", "shell", "local_shell", "apply_patch", "computer"]
    calls = [ToolCall(f"c_{k}|", k, kind=k, input={}) for k in kinds]  # type: ignore[arg-type]
    items = convert_messages_to_input_items(prepare_history([U, asks(*calls)]))
    outputs = items[-len(kinds) :]
    assert [i["type"] for i in outputs] == [
        "function_call_output",
        "custom_tool_call_output",
        "shell_call_output",
        "local_shell_call_output",
        "apply_patch_call_output",
        "computer_call_output",
    ]
    assert outputs[2]["output"][0]["outcome"] == {"type": "exit", "exit_code": 1}
    assert outputs[4]["status"] == "failed"
    assert outputs[5]["output"]["image_url"].startswith("data:image/png;base64,")
