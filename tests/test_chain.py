"""The continuation planner, table-driven (PROTOCOL.md section 1)."""

from __future__ import annotations

from typing import Any

import pytest

from openai_ws.chain import IGNORED_FIELDS, ChainPlan, plan_request
from openai_ws.convert import convert_messages_to_input_items, convert_tools
from openai_ws.messages import Tool, ToolResultMessage, UserMessage

TOOLS = convert_tools([Tool("get_weather", "weather", {"type": "object"})])
USER = convert_messages_to_input_items([UserMessage("Weather in Paris?")])
CALL = {
    "type": "function_call",
    "id": "fc_1",
    "call_id": "call_1",
    "name": "get_weather",
    "arguments": '{"city":"Paris"}',
    "status": "completed",
}
# the output item as the server sends it, and as the client replays it (no id, no status)
CALL_REPLAYED = {
    "type": "function_call",
    "call_id": "call_1",
    "name": "get_weather",
    "arguments": '{"city":"Paris"}',
}
RESULT = convert_messages_to_input_items([ToolResultMessage("call_1|fc_1", "get_weather", "18C")])
NEXT_USER = convert_messages_to_input_items([UserMessage("And Rome?")])


def request(input_items: Any, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": "gpt-5.2",
        "instructions": "Be terse.",
        "tools": TOOLS,
        "store": False,
    }
    base.update(fields)
    base["input"] = input_items
    return base


PREVIOUS = request(USER)
OUTPUT = [CALL]

CASES: dict[str, tuple[dict[str, Any], dict[str, Any], Any]] = {
    # name: (new request, keyword arguments for the planner, expected delta input or None = full)
    "first_turn": (request(USER), {}, None),
    "tool_results_only": (
        request([*USER, CALL_REPLAYED, *RESULT]),
        {"previous_request": PREVIOUS, "previous_output": OUTPUT, "previous_response_id": "resp_1"},
        RESULT,
    ),
    "tool_results_plus_new_user_message": (
        request([*USER, CALL_REPLAYED, *RESULT, *NEXT_USER]),
        {"previous_request": PREVIOUS, "previous_output": OUTPUT, "previous_response_id": "resp_1"},
        RESULT + NEXT_USER,
    ),
    "exact_replay_gives_no_delta": (
        request([*USER, CALL_REPLAYED]),
        {"previous_request": PREVIOUS, "previous_output": OUTPUT, "previous_response_id": "resp_1"},
        None,
    ),
    "changed_instructions": (
        request([*USER, CALL_REPLAYED, *RESULT], instructions="Be verbose."),
        {"previous_request": PREVIOUS, "previous_output": OUTPUT, "previous_response_id": "resp_1"},
        None,
    ),
    "changed_tools": (
        request([*USER, CALL_REPLAYED, *RESULT], tools=[]),
        {"previous_request": PREVIOUS, "previous_output": OUTPUT, "previous_response_id": "resp_1"},
        None,
    ),
    "changed_model": (
        request([*USER, CALL_REPLAYED, *RESULT], model="gpt-5-mini"),
        {"previous_request": PREVIOUS, "previous_output": OUTPUT, "previous_response_id": "resp_1"},
        None,
    ),
    "added_option": (
        request([*USER, CALL_REPLAYED, *RESULT], temperature=0.2),
        {"previous_request": PREVIOUS, "previous_output": OUTPUT, "previous_response_id": "resp_1"},
        None,
    ),
    "removed_option": (
        request([*USER, CALL_REPLAYED, *RESULT], store=None) | {"store": None},
        {"previous_request": PREVIOUS, "previous_output": OUTPUT, "previous_response_id": "resp_1"},
        None,
    ),
    "edited_history": (
        request(
            [
                *convert_messages_to_input_items([UserMessage("Weather in Lyon?")]),
                CALL_REPLAYED,
                *RESULT,
            ]
        ),
        {"previous_request": PREVIOUS, "previous_output": OUTPUT, "previous_response_id": "resp_1"},
        None,
    ),
    "assistant_output_missing_from_history": (
        request(USER + RESULT),
        {"previous_request": PREVIOUS, "previous_output": OUTPUT, "previous_response_id": "resp_1"},
        None,
    ),
    "shorter_history": (
        request([]),
        {"previous_request": PREVIOUS, "previous_output": OUTPUT, "previous_response_id": "resp_1"},
        None,
    ),
    "no_previous_response_id": (
        request([*USER, CALL_REPLAYED, *RESULT]),
        {"previous_request": PREVIOUS, "previous_output": OUTPUT, "previous_response_id": None},
        None,
    ),
    "no_previous_request": (
        request([*USER, CALL_REPLAYED, *RESULT]),
        {"previous_output": OUTPUT, "previous_response_id": "resp_1"},
        None,
    ),
    "metadata_may_change": (
        request([*USER, CALL_REPLAYED, *RESULT], metadata={"turn": "2"}),
        {"previous_request": PREVIOUS, "previous_output": OUTPUT, "previous_response_id": "resp_1"},
        RESULT,
    ),
    "after_warm_up": (
        request(USER),
        {
            "previous_request": request([], generate=False),
            "previous_output": [],
            "previous_response_id": "resp_warm",
        },
        USER,
    ),
    "string_input_continued": (
        request([{"type": "message", "role": "user", "content": "hi"}, CALL_REPLAYED, *RESULT]),
        {
            "previous_request": request("hi"),
            "previous_output": OUTPUT,
            "previous_response_id": "resp_1",
        },
        RESULT,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_plan(name: str) -> None:
    new, kwargs, expected_delta = CASES[name]
    plan = plan_request(new, **kwargs)
    assert isinstance(plan, ChainPlan)
    if expected_delta is None:
        assert not plan.is_delta, plan.reason
        assert plan.previous_response_id is None
        assert "previous_response_id" not in plan.payload
        assert plan.payload == new
    else:
        assert plan.is_delta, plan.reason
        assert plan.payload["input"] == expected_delta
        assert plan.payload["previous_response_id"] == kwargs["previous_response_id"]
        assert {
            k: v for k, v in plan.payload.items() if k not in ("input", "previous_response_id")
        } == {k: v for k, v in new.items() if k != "input"}


def test_never_both_history_and_previous_response_id() -> None:
    for name, (new, kwargs, _) in CASES.items():
        plan = plan_request(new, **kwargs)
        if plan.is_delta:
            delta = plan.payload["input"]
            assert new["input"][len(new["input"]) - len(delta) :] == delta, name
            # the delta holds nothing of the history the server already has
            had_history = bool(kwargs["previous_request"]["input"])
            assert len(delta) < len(new["input"]) or not had_history, name
        else:
            assert "previous_response_id" not in plan.payload, name


def test_full_plan_strips_a_stale_previous_response_id_only_when_not_set_by_caller() -> None:
    user_set = request(USER, previous_response_id="resp_mine")
    plan = plan_request(
        user_set, previous_request=PREVIOUS, previous_output=OUTPUT, previous_response_id="resp_1"
    )
    assert plan.previous_response_id == "resp_mine"
    assert plan.reason == "set by the caller"
    assert plan.payload == user_set


def test_reasons_name_the_changed_field() -> None:
    new, kwargs, _ = CASES["changed_tools"]
    assert plan_request(new, **kwargs).reason == "'tools' changed"
    new, kwargs, _ = CASES["exact_replay_gives_no_delta"]
    assert plan_request(new, **kwargs).reason == "no new input items"


def test_planner_does_not_mutate_its_inputs() -> None:
    new, kwargs, _ = CASES["tool_results_only"]
    snapshot = repr((new, kwargs))
    plan_request(new, **kwargs)
    assert repr((new, kwargs)) == snapshot


def test_ignored_fields() -> None:
    assert {"input", "previous_response_id", "metadata"} <= IGNORED_FIELDS
    assert "instructions" not in IGNORED_FIELDS
    assert "tools" not in IGNORED_FIELDS


def test_missing_or_single_object_input_is_compared_as_items() -> None:
    previous = request(None)
    plan = plan_request(
        request(RESULT[0]), previous_request=previous, previous_output=[], previous_response_id="r"
    )
    assert plan.payload["input"] == [RESULT[0]]
    assert plan.is_delta
