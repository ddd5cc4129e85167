"""The emulated models: the default one, scripts, and verbatim replays of recordings and of
OpenAI's WebSocket contract, over both transports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from openai_ws.testing import (
    DefaultModel,
    Failure,
    FakeResponsesServer,
    FunctionCall,
    Incomplete,
    LatencyModel,
    ModelRequest,
    RawFrames,
    Rejection,
    ReplayModel,
    ScriptedModel,
    Text,
    Turn,
)
from openai_ws.testing.models import turn
from tests.conftest import recorded_files, recorded_streams, scenarios

from .helpers import WEATHER_TOOL, connect, parse_sse, sse_turn, text_of, ws_turn

FAST = LatencyModel.instant()
TOOLS = [
    WEATHER_TOOL,
    {"type": "function", "name": "send_email", "parameters": {"type": "object", "properties": {}}},
]


def request(
    context: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> ModelRequest:
    return ModelRequest(
        {"model": "m", "tools": TOOLS if tools is None else tools}, context, "websocket", 1
    )


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


# -- the default model --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "subjects"),
    [
        ("What's the weather in Paris and New York?", ["Paris", "New York"]),
        ("Weather in Oslo, Rome and Tokyo", ["Oslo", "Rome", "Tokyo"]),
        ("Paris weather?", ["Paris"]),
        ("Can I get the weather in Lyon?", ["Lyon"]),
    ],
)
def test_default_model_calls_the_tool_once_per_subject(text: str, subjects: list[str]) -> None:
    model = DefaultModel()
    context = [user(text)]
    seen = []
    for _ in range(len(subjects)):
        planned = model(request(context))
        (call,) = planned.parts
        assert isinstance(call, FunctionCall)
        assert call.name == "get_weather"
        seen.append(call.arguments["city"])  # type: ignore[index]
        call_id = f"call_{len(seen)}"
        context += [
            {
                "type": "function_call",
                "call_id": call_id,
                "name": "get_weather",
                "arguments": json.dumps(call.arguments),
            },
            {"type": "function_call_output", "call_id": call_id, "output": f"{len(seen) * 10}C"},
        ]
    assert seen == subjects
    (answer,) = model(request(context)).parts
    assert isinstance(answer, Text)
    assert (
        answer.text
        == "Here is what I found. "
        + "; ".join(f"{s}: {(n + 1) * 10}C" for n, s in enumerate(subjects))
        + "."
    )


def test_default_model_without_tool_mention_echoes() -> None:
    (answer,) = DefaultModel()(request([user("Tell me a joke")])).parts
    assert answer == Text("You said: Tell me a joke")
    (answer,) = DefaultModel()(request([], tools=[])).parts
    assert answer == Text("Hello! How can I help?")


def test_default_model_tool_without_string_parameter_is_called_once() -> None:
    model = DefaultModel()
    (call,) = model(request([user("please send an email")])).parts
    assert call == FunctionCall("send_email", {})
    context = [
        user("please send an email"),
        {"type": "function_call", "call_id": "c1", "name": "send_email", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sent"},
    ]
    assert model(request(context)).parts == (Text("Here is what I found. sent."),)


def test_default_model_with_no_subject_passes_the_message() -> None:
    (call,) = DefaultModel()(request([user("weather here please")])).parts
    assert call == FunctionCall("get_weather", {"city": "weather here please"})


def test_default_agent_loop_over_websocket_runs_several_turns() -> None:
    with FakeResponsesServer(latency=FAST) as server:
        ws = connect(server.ws_url)
        body: dict[str, Any] = {
            "model": "m",
            "input": "Weather in Paris, Rome and Oslo?",
            "tools": [WEATHER_TOOL],
            "store": False,
        }
        turns = 0
        while True:
            response = ws_turn(ws, body)[-1]["response"]
            turns += 1
            calls = [i for i in response["output"] if i["type"] == "function_call"]
            if not calls:
                break
            body = {
                "model": "m",
                "tools": [WEATHER_TOOL],
                "store": False,
                "previous_response_id": response["id"],
                "input": [
                    {"type": "function_call_output", "call_id": c["call_id"], "output": "sunny"}
                    for c in calls
                ],
            }
        ws.close()
    assert turns == 4
    assert (
        response["output"][0]["content"][0]["text"]
        == "Here is what I found. Paris: sunny; Rome: sunny; Oslo: sunny."
    )


# -- scripts ------------------------------------------------------------------------------------


def test_turn_shorthands() -> None:
    assert turn("hi") == Turn((Text("hi"),))
    assert turn(Failure()) == Turn(ending=Failure())
    assert turn(Rejection()) == Turn(rejection=Rejection())
    assert turn(RawFrames(({"type": "x"},))).raw is not None
    assert turn(["a", FunctionCall("f"), Incomplete()]) == Turn(
        (Text("a"), FunctionCall("f")), Incomplete()
    )
    with pytest.raises(ValueError, match="nothing may follow"):
        turn([Incomplete(), "late"])
    with pytest.raises(TypeError):
        turn([3])
    with pytest.raises(TypeError):
        turn(3)  # type: ignore[arg-type]


def test_scripted_model_exhaustion() -> None:
    model = ScriptedModel(["one"])
    assert model.remaining == 1
    assert model(request([])).parts == (Text("one"),)
    assert model.remaining == 0
    rejection = model(request([])).rejection
    assert rejection is not None
    assert (rejection.status, rejection.code) == (500, "server_error")
    assert ScriptedModel(["x"], then="repeat")(request([])) == ScriptedModel(["x"])(request([]))
    deferring = ScriptedModel([], then=DefaultModel())
    assert deferring(request([user("hello")])).parts == (Text("You said: hello"),)
    with pytest.raises(ValueError, match="then"):
        ScriptedModel([], then="loop")


def test_rejection_turn_over_both_transports() -> None:
    rejection = Rejection(
        code="context_length_exceeded", message="too long", status=400, param="input"
    )
    with FakeResponsesServer(
        latency=FAST, model=ScriptedModel([rejection], then="repeat")
    ) as server:
        http = requests.post(
            f"{server.http_base_url}/responses",
            json={"model": "m", "input": "x", "stream": True},
            timeout=10,
        )
        assert http.status_code == 400
        assert http.json()["error"] == {
            "type": "invalid_request_error",
            "code": "context_length_exceeded",
            "message": "too long",
            "param": "input",
        }
        ws = connect(server.ws_url)
        event = ws_turn(ws, {"model": "m", "input": "x"})[-1]
        ws.close()
    assert event == {"type": "error", "status": 400, "error": http.json()["error"]}


def test_a_broken_model_fails_the_request_visibly() -> None:
    def raising(request: ModelRequest) -> Turn:
        raise KeyError("no such city")

    with FakeResponsesServer(latency=FAST, model=lambda r: "oops") as server:  # type: ignore[arg-type,return-value]
        ws = connect(server.ws_url)
        event = ws_turn(ws, {"model": "m", "input": "x"})[-1]
        assert (event["status"], event["error"]["message"]) == (
            500,
            "the emulator's model returned str, not a Turn",
        )
        server.model = raising
        event = ws_turn(ws, {"model": "m", "input": "x"})[-1]
        assert event["error"]["message"] == "the emulator's model raised KeyError('no such city')"
        server.model = DefaultModel()
        assert ws_turn(ws, {"model": "m", "input": "x"})[-1]["type"] == "response.completed"
        ws.close()


# -- replays ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", recorded_files(), ids=lambda p: p.name.replace(".chunks.txt", ""))
def test_recorded_streams_replay_over_both_transports(path: Path) -> None:
    expected = recorded_streams(path)
    with FakeResponsesServer(latency=FAST, model=ReplayModel.from_recording(path)) as server:
        ws = connect(server.ws_url)
        half = (len(expected) + 1) // 2
        for stream in expected[:half]:
            ws.send(json.dumps({"type": "response.create", "model": "m", "input": "x"}))
            assert [json.loads(ws.recv()) for _ in stream] == stream
        ws.close()
        for stream in expected[half:]:
            response = requests.post(
                f"{server.http_base_url}/responses",
                json={"model": "m", "input": "x", "stream": True},
                timeout=10,
            )
            events = parse_sse(response.content)
            assert [json.loads(data) for _, data in events] == stream
            assert [name for name, _ in events] == [e["type"] for e in stream]
    if len(expected) == 1:  # single-stream files: replay over SSE too
        with FakeResponsesServer(latency=FAST, model=ReplayModel.from_recording(path)) as server:
            response = requests.post(
                f"{server.http_base_url}/responses",
                json={"model": "m", "input": "x", "stream": True},
                timeout=10,
            )
            assert [json.loads(data) for _, data in parse_sse(response.content)] == expected[0]


@pytest.mark.parametrize("scenario", scenarios(), ids=lambda s: s["id"])
def test_contract_scenarios_replay_verbatim(scenario: dict[str, Any]) -> None:
    import websocket

    with FakeResponsesServer(latency=FAST, model=ReplayModel.from_scenario(scenario)) as server:
        ws = connect(server.ws_url)
        for entry in scenario["turns"]:
            ws.send(json.dumps(entry["request"]))
            for frame in entry["frames"]:
                received = ws.recv()
                assert received == (frame if isinstance(frame, str) else json.dumps(frame))
        if scenario.get("close_code"):
            opcode, data = ws.recv_data(control_frame=True)
            assert opcode == websocket.ABNF.OPCODE_CLOSE
            assert int.from_bytes(data[:2], "big") == scenario["close_code"]
        ws.close()


def test_replay_commits_the_completed_response_for_chaining() -> None:
    (scenario,) = [s for s in scenarios() if s["id"] == "completed_then_completed"]
    with FakeResponsesServer(latency=FAST, model=ReplayModel.from_scenario(scenario)) as server:
        ws = connect(server.ws_url)
        ws_turn(ws, scenario["turns"][0]["request"], wrap=False)
        ws_turn(ws, scenario["turns"][1]["request"], wrap=False)
        ws.close()
        assert "resp_first" in server.engine.store


def test_replay_with_a_cut_over_http() -> None:
    model = ReplayModel(
        [RawFrames(({"type": "response.created", "response": {"id": "r"}},), close_code=1006)]
    )
    with FakeResponsesServer(latency=FAST, model=model) as server:
        response = requests.post(
            f"{server.http_base_url}/responses",
            json={"model": "m", "input": "x", "stream": True},
            stream=True,
            timeout=10,
        )
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            response.content  # noqa: B018 - reading the body is the act


def test_scripted_turns_over_sse_match_websocket_text() -> None:
    with FakeResponsesServer(
        latency=FAST, model=ScriptedModel(["same text here"], then="repeat")
    ) as server:
        ws = connect(server.ws_url)
        over_ws = text_of(ws_turn(ws, {"model": "m", "input": "x"}))
        ws.close()
        over_sse = text_of(sse_turn(server.http_base_url, {"model": "m", "input": "x"}))
    assert over_ws == over_sse == "same text here"


def test_turn_shorthand_takes_the_new_parts() -> None:
    from openai_ws.testing import BuiltinCall, CustomCall, HostedCall, ParallelCall
    from openai_ws.testing.models import FunctionCall as Call
    from openai_ws.testing.models import Turn, turn

    parts = [
        CustomCall("sql", "SELECT 1"),
        HostedCall("web_search_call"),
        BuiltinCall("shell_call", {"commands": ["ls"]}),
        ParallelCall([Call("a"), Call("b")]),
    ]
    assert turn(parts) == Turn(tuple(parts))
    for part in parts:
        assert turn(part) == Turn((part,))
    assert ParallelCall([Call("a")]).calls == (Call("a"),)
