"""OpenAI's cross-SDK WebSocket contract (PROTOCOL.md section 6) against WebSocketConnection."""

from __future__ import annotations

from typing import Any

import pytest

from openai_ws.convert import build_assistant_message_from_response
from openai_ws.exceptions import ConnectionClosed, ProtocolError
from openai_ws.protocol import (
    ErrorEvent,
    OutputTextDelta,
    ResponseCompleted,
    ResponseCreated,
    ResponseFailed,
    ResponseIncomplete,
    ServerEvent,
    UnknownEvent,
)
from openai_ws.testing import FakeResponsesServer, LatencyModel, ReplayModel
from openai_ws.transports import WebSocketConnection
from tests.conftest import scenarios

SCENARIOS = {s["id"]: s for s in scenarios()}


def play(scenario_id: str) -> tuple[WebSocketConnection, FakeResponsesServer, list[dict[str, Any]]]:
    scenario = SCENARIOS[scenario_id]
    server = FakeResponsesServer(
        latency=LatencyModel.instant(), model=ReplayModel.from_scenario(scenario)
    ).start()
    return (
        WebSocketConnection(server.ws_url, api_key="sk-scenario-0123456789", backoff=(0.01,)),
        server,
        scenario["turns"],
    )


def turn_events(connection: WebSocketConnection, turn: dict[str, Any]) -> list[ServerEvent]:
    return list(connection.create(turn["request"]))


def test_every_scenario_is_covered() -> None:
    assert set(SCENARIOS) == {
        "completed_then_completed",
        "failed_then_completed",
        "incomplete_then_completed",
        "nested_error_then_completed",
        "unknown_event_and_fields",
        "premature_close_1000",
        "premature_close_1011",
        "malformed_json",
    }


def test_completed_then_completed() -> None:
    connection, server, turns = play("completed_then_completed")
    with server, connection:
        first = turn_events(connection, turns[0])
        assert [type(e) for e in first] == [ResponseCreated, OutputTextDelta, ResponseCompleted]
        assert [e.raw for e in first] == turns[0]["frames"]
        assert connection.previous_response_id == "resp_first"
        second = turn_events(connection, turns[1])
        assert [e.raw for e in second] == turns[1]["frames"]
        assert connection.connections_opened == 1  # the socket stayed usable
    assert server.requests[1].body["previous_response_id"] == "resp_first"


def test_failed_then_completed() -> None:
    connection, server, turns = play("failed_then_completed")
    with server, connection:
        first = turn_events(connection, turns[0])
        assert isinstance(first[-1], ResponseFailed)  # a terminal response, not a transport close
        assert connection.is_connected()
        assert connection.previous_response_id is None
        assert isinstance(turn_events(connection, turns[1])[-1], ResponseCompleted)
        assert connection.connections_opened == 1


def test_incomplete_then_completed() -> None:
    connection, server, turns = play("incomplete_then_completed")
    with server, connection:
        first = turn_events(connection, turns[0])
        assert isinstance(first[-1], ResponseIncomplete)
        message = build_assistant_message_from_response(first[-1].response, "gpt-4o-mini")
        assert message.stop_reason == "length"
        assert isinstance(turn_events(connection, turns[1])[-1], ResponseCompleted)


def test_nested_error_then_completed() -> None:
    connection, server, turns = play("nested_error_then_completed")
    with server, connection:
        (error,) = turn_events(connection, turns[0])
        assert isinstance(error, ErrorEvent)
        assert (error.code, error.status, error.param, error.error_type) == (
            "invalid_value",
            400,
            "input",
            "invalid_request_error",
        )
        exception = error.to_exception()
        assert (exception.code, exception.status_code, exception.message) == (
            "invalid_value",
            400,
            "Synthetic invalid input",
        )
        assert isinstance(turn_events(connection, turns[1])[-1], ResponseCompleted)


def test_unknown_event_and_fields() -> None:
    connection, server, turns = play("unknown_event_and_fields")
    with server, connection:
        events = turn_events(connection, turns[0])
    unknown = events[1]
    assert isinstance(unknown, UnknownEvent)
    assert unknown.type == "response.future_event"
    assert unknown.raw["future_payload"] == {"value": "retained"}
    assert isinstance(events[-1], ResponseCompleted)
    assert events[-1].response["future_response_field"] == "retained"


@pytest.mark.parametrize(
    ("scenario_id", "code", "retryable"),
    [("premature_close_1000", 1000, False), ("premature_close_1011", 1011, True)],
)
def test_premature_close_is_not_a_response(scenario_id: str, code: int, retryable: bool) -> None:
    connection, server, turns = play(scenario_id)
    received: list[ServerEvent] = []
    with server, connection:
        stream = connection.create(turns[0]["request"])
        with pytest.raises(ConnectionClosed) as info:
            received.extend(stream)
        assert stream.terminal is None  # nothing fabricated
        assert connection.previous_response_id is None
    assert [type(e) for e in received] == [ResponseCreated]
    assert (info.value.code, info.value.retryable) == (code, retryable)


def test_malformed_json() -> None:
    connection, server, turns = play("malformed_json")
    received: list[ServerEvent] = []
    with server, connection, pytest.raises(ProtocolError, match="not valid JSON"):
        received.extend(connection.create(turns[0]["request"]))
    assert [type(e) for e in received] == [ResponseCreated]
