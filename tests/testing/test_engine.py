"""The emulator's Engine on its own: no sockets, requests in, planned replies out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openai_ws.testing import ScriptedModel
from openai_ws.testing.engine import (
    ConnectionState,
    Engine,
    LatencyModel,
    Reply,
    estimate_tokens,
)
from openai_ws.testing.models import FunctionCall, Rejection, Text

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def events(reply: Reply) -> list[dict[str, Any]]:
    return [json.loads(text) for _, _, text in reply.frames]


def engine(*turns: Any) -> Engine:
    return Engine(model=ScriptedModel(turns), latency=LatencyModel.instant())


def ws(number: int = 1) -> ConnectionState:
    return ConnectionState(number, "websocket")


def test_estimate_tokens_is_a_quarter_of_the_json() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens({"a": 1}) == estimate_tokens('{"a":1}')


def test_latency_profiles() -> None:
    instant = LatencyModel.instant()
    assert instant.first_event(10_000) == 0.0
    assert instant.delta("word") == 0.0
    realistic = LatencyModel.realistic()
    assert realistic.first_event(0) == pytest.approx(0.25)
    assert realistic.first_event(1000) > realistic.first_event(0)


def test_a_turn_is_the_full_event_sequence_with_increasing_sequence_numbers() -> None:
    reply = engine("Hello there").handle(
        {"type": "response.create", "model": "m", "input": "hi"}, ws()
    )
    sent = events(reply)
    types = [e["type"] for e in sent]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert [e["sequence_number"] for e in sent] == list(range(len(sent)))
    assert reply.response is not None
    assert reply.response["status"] == "completed"
    assert reply.response["output"][0]["content"][0]["text"] == "Hello there"


def test_websocket_requests_must_be_response_create() -> None:
    reply = engine("x").handle({"model": "m", "input": "hi"}, ws())
    assert reply.rejected
    assert reply.status == 400
    assert events(reply)[0]["error"]["code"] == "unknown_event_type"


def test_sent_commits_the_response_to_the_connection_cache_and_the_store() -> None:
    eng = engine("one", "two")
    connection = ws()
    first = eng.handle({"type": "response.create", "model": "m", "input": "hi"}, connection)
    assert connection.cache is None  # nothing is committed before every frame was delivered
    first.sent()
    assert first.response is not None
    response_id = first.response["id"]
    assert connection.cache is not None
    assert connection.cache.id == response_id
    assert response_id in eng.store
    body = {"type": "response.create", "model": "m", "previous_response_id": response_id}
    second = eng.handle({**body, "input": "more"}, connection)
    assert not second.rejected
    usage = events(second)[-1]["response"]["usage"]
    assert usage["input_tokens_details"]["cached_tokens"] > 0


def test_store_false_lives_only_in_the_connection_cache() -> None:
    eng = engine("one", "two")
    first = eng.handle(
        {"type": "response.create", "model": "m", "input": "hi", "store": False}, ws(1)
    )
    first.sent()
    assert first.response is not None
    assert first.response["id"] not in eng.store
    other = eng.handle(
        {
            "type": "response.create",
            "model": "m",
            "input": "more",
            "previous_response_id": first.response["id"],
        },
        ws(2),
    )
    assert events(other)[0]["error"]["code"] == "previous_response_not_found"


def test_a_rejected_turn_evicts_the_cache() -> None:
    eng = engine("one", Rejection(code="boom", message="no"))
    connection = ws()
    eng.handle({"type": "response.create", "model": "m", "input": "hi"}, connection).sent()
    assert connection.cache is not None
    reply = eng.handle({"type": "response.create", "model": "m", "input": "again"}, connection)
    assert reply.rejected
    assert reply.error_body == {
        "error": {"type": "invalid_request_error", "code": "boom", "message": "no", "param": None}
    }
    assert connection.cache is None


def test_a_call_without_its_output_is_rejected_as_the_api_does() -> None:
    eng = engine(FunctionCall("get_weather", {"city": "Paris"}, call_id="call_1"), "done")
    body = {"model": "m", "tools": [WEATHER]}
    first = eng.handle({**body, "input": "weather?"}, ConnectionState(1, "sse"))
    first.sent()
    assert first.response is not None
    call = first.response["output"][0]
    assert call["call_id"] == "call_1"
    reply = eng.handle(
        {**body, "input": [{"type": "message", "role": "user", "content": "weather?"}, call]},
        ConnectionState(1, "sse"),
    )
    assert reply.rejected
    assert "No tool output found for function call call_1" in reply.error_body["error"]["message"]  # type: ignore[index]


def test_an_output_without_its_call_is_rejected() -> None:
    reply = engine("x").handle(
        {
            "model": "m",
            "input": [{"type": "function_call_output", "call_id": "call_x", "output": "1"}],
        },
        ConnectionState(1, "sse"),
    )
    assert reply.rejected
    assert "call_x" in reply.error_body["error"]["message"]  # type: ignore[index]


def test_a_model_that_raises_fails_the_request_with_a_500_saying_why() -> None:
    def broken(request: Any) -> Any:
        raise RuntimeError("script bug")

    eng = Engine(model=broken, latency=LatencyModel.instant())
    reply = eng.handle({"model": "m", "input": "hi"}, ConnectionState(1, "sse"))
    assert reply.status == 500
    assert "script bug" in reply.error_body["error"]["message"]  # type: ignore[index]


def test_flat_error_shape() -> None:
    eng = Engine(model=ScriptedModel([Text("x")]), error_shape="flat")
    reply = eng.handle({"type": "response.create", "model": "m", "input": 3}, ws())
    event = events(reply)[0]
    assert event["type"] == "error"
    assert event["code"] == "invalid_type"
    assert "error" not in event
    with pytest.raises(ValueError, match="error_shape"):
        Engine(error_shape="weird")


# -- the whole Responses API: tools, calls and items beyond functions ------------------------

from openai_ws.testing import (  # noqa: E402
    BuiltinCall,
    CustomCall,
    HostedCall,
    ParallelCall,
)


def sse() -> ConnectionState:
    return ConnectionState(1, "sse")


def test_custom_tool_definitions_are_accepted_and_need_a_name() -> None:
    ok = engine("x").handle(
        {"model": "m", "input": "hi", "tools": [{"type": "custom", "name": "sql"},
                                                {"type": "web_search"}]},
        sse(),
    )  # fmt: skip
    assert not ok.rejected
    bad = engine("x").handle({"model": "m", "input": "hi", "tools": [{"type": "custom"}]}, sse())
    assert bad.error_body["error"]["param"] == "tools[0].name"  # type: ignore[index]


def test_a_custom_call_streams_its_input() -> None:
    reply = engine(CustomCall("sql", "SELECT * FROM t", call_id="call_c")).handle(
        {"model": "m", "input": "q"}, sse()
    )
    sent = events(reply)
    deltas = [e["delta"] for e in sent if e["type"] == "response.custom_tool_call_input.delta"]
    assert "".join(deltas) == "SELECT * FROM t"
    (done,) = [e for e in sent if e["type"] == "response.custom_tool_call_input.done"]
    assert done["input"] == "SELECT * FROM t"
    item = sent[-1]["response"]["output"][0]
    assert item["type"] == "custom_tool_call"
    assert (item["call_id"], item["name"], item["input"]) == ("call_c", "sql", "SELECT * FROM t")


def test_a_hosted_call_streams_its_progress() -> None:
    reply = engine(HostedCall("code_interpreter_call", {"code": "1+1"})).handle(
        {"model": "m", "input": "q"}, sse()
    )
    types = [e["type"] for e in events(reply)]
    assert types[2:-1] == [
        "response.output_item.added",
        "response.code_interpreter_call.in_progress",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed",
        "response.output_item.done",
    ]
    item = events(reply)[-1]["response"]["output"][0]
    assert (item["type"], item["status"], item["code"]) == ("code_interpreter_call", "completed",
                                                            "1+1")  # fmt: skip
    assert item["id"].startswith("ci_")


def test_a_shell_call_streams_its_commands() -> None:
    reply = engine(BuiltinCall("shell_call", {"commands": ["ls -a", "pwd"]})).handle(
        {"model": "m", "input": "q"}, sse()
    )
    sent = events(reply)
    done = [e["command"] for e in sent if e["type"] == "response.shell_call_command.done"]
    assert done == ["ls -a", "pwd"]
    assert sent[-1]["response"]["output"][0]["action"] == {"commands": ["ls -a", "pwd"]}
    with pytest.raises(ValueError, match=r"BuiltinCall\.type"):
        BuiltinCall("bash_call")


def test_a_parallel_wrapper_is_one_function_call() -> None:
    reply = engine(
        ParallelCall((FunctionCall("a", {"x": 1}), FunctionCall("b")), call_id="call_p")
    ).handle({"model": "m", "input": "q"}, sse())
    item = events(reply)[-1]["response"]["output"][0]
    assert (item["type"], item["name"], item["call_id"]) == ("function_call", "parallel", "call_p")
    assert json.loads(item["arguments"]) == {
        "tool_uses": [
            {"recipient_name": "functions.a", "parameters": {"x": 1}},
            {"recipient_name": "functions.b", "parameters": {}},
        ]
    }


USER = {"type": "message", "role": "user", "content": "q"}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            [USER, {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
             {"type": "custom_tool_call_output", "call_id": "c1", "output": "x"}],
            "No tool call found for custom tool call output with call_id c1",
        ),
        (
            [USER, {"type": "custom_tool_call", "call_id": "c1", "name": "f", "input": ""}],
            "No tool output found for custom tool call c1",
        ),
        (
            [USER, {"type": "shell_call_output", "call_id": "c9", "output": []}],
            "No tool call found for shell call output with call_id c9",
        ),
        (
            [USER, {"type": "function_call", "call_id": " ", "name": "f", "arguments": "{}"}],
            "empty string",
        ),
    ],
    ids=["custom output for a function call", "custom call without output", "orphan shell",
         "blank call id"],
)  # fmt: skip
def test_requests_the_api_rejects_are_rejected(items: list[Any], message: str) -> None:
    reply = engine("x").handle({"model": "m", "input": items}, sse())
    assert reply.status == 400
    assert message in reply.error_body["error"]["message"]  # type: ignore[index]


def test_every_client_call_kind_pairs_with_its_output() -> None:
    items = [
        USER,
        {"type": "shell_call", "call_id": "s", "action": {"commands": []}},
        {"type": "local_shell_call", "id": "lsh_1", "call_id": "l", "action": {}},
        {"type": "apply_patch_call", "call_id": "p", "operation": {}},
        {"type": "computer_call", "id": "cu_1", "call_id": "c", "action": {}},
        {"type": "custom_tool_call", "call_id": "x", "name": "f", "input": "i"},
        {"type": "shell_call_output", "call_id": "s", "output": []},
        {"type": "local_shell_call_output", "id": "l", "output": "{}"},
        {"type": "apply_patch_call_output", "call_id": "p", "status": "completed"},
        {"type": "computer_call_output", "call_id": "c", "output": {}},
        {"type": "custom_tool_call_output", "call_id": "x", "output": "o"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
    ]
    assert not engine("ok").handle({"model": "m", "input": items}, sse()).rejected
