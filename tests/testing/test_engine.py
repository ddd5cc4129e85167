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
