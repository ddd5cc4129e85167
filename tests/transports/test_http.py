"""SSETransport against the emulator, and the same events over both transports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from openai_ws.exceptions import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    ConnectionClosed,
    ProtocolError,
    RateLimitError,
    StreamTimeout,
)
from openai_ws.protocol import ErrorEvent, ServerEvent
from openai_ws.testing import (
    BadFrame,
    CloseSocket,
    CutBody,
    Failure,
    FakeResponsesServer,
    FunctionCall,
    LatencyModel,
    RawFrames,
    Reasoning,
    Rejection,
    ReplayModel,
    ScriptedModel,
    Stall,
    Text,
)
from openai_ws.transports import SSETransport, WebSocketConnection
from tests.conftest import FAST, KEY, RECORDED, TIME_FACTOR, recorded_streams, wait_for
from tests.transports.servers import FixedResponseServer

TERMINAL = {"response.completed", "response.failed", "response.incomplete", "error"}


@pytest.fixture
def transport(server: FakeResponsesServer) -> Iterator[SSETransport]:
    with SSETransport(server.http_base_url, api_key=KEY) as sse:
        yield sse


def body(text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": "m", "input": text, **extra}


def test_post_and_events(server: FakeResponsesServer, transport: SSETransport) -> None:
    server.model = ScriptedModel(["Hello world"])
    stream = transport.create(body(type="response.create"))
    events = list(stream)
    assert next(e.type for e in events) == "response.created"
    assert events[-1].type == "response.completed"
    assert stream.request_id is not None
    assert stream.request_id.startswith("req_")
    assert stream.response_id == events[-1].raw["response"]["id"]
    assert stream.terminal is events[-1]
    assert list(stream) == []
    recorded = server.requests[-1]
    assert recorded.transport == "sse"
    assert recorded.body == {"model": "m", "input": "hi", "stream": True}
    assert recorded.headers["accept"] == "text/event-stream"
    assert recorded.headers["content-type"] == "application/json"
    assert recorded.headers["authorization"] == "<redacted>"


def test_headers_organization_project(server: FakeResponsesServer) -> None:
    with SSETransport(
        server.http_base_url,
        api_key=KEY,
        headers={"X-App": "t"},
        organization="org_1",
        project="proj_1",
    ) as sse:
        list(sse.create(body(), headers={"X-Turn": "1"}))
    headers = server.requests[-1].headers
    assert (
        headers["x-app"],
        headers["openai-organization"],
        headers["openai-project"],
        headers["x-turn"],
    ) == (
        "t",
        "org_1",
        "proj_1",
        "1",
    )


@pytest.mark.parametrize(
    ("rejection", "cls", "attributes"),
    [
        (
            Rejection(
                code="rate_limit_exceeded",
                message="slow",
                status=429,
                type="requests",
                headers={"retry-after": "2.5"},
            ),
            RateLimitError,
            {"retry_after": 2.5, "status_code": 429},
        ),
        (
            Rejection(code="server_error", message="boom", status=500, type="server_error"),
            APIError,
            {"status_code": 500, "code": "server_error", "retryable": True},
        ),
        (
            Rejection(code="context_length_exceeded", message="long", status=400, param="input"),
            APIError,
            {"param": "input", "retryable": False},
        ),
    ],
)
def test_error_statuses_map_to_typed_errors(
    server: FakeResponsesServer,
    transport: SSETransport,
    rejection: Rejection,
    cls: type[APIError],
    attributes: dict[str, Any],
) -> None:
    server.inject(rejection)
    with pytest.raises(cls) as info:
        transport.create(body())
    error = info.value
    for name, value in attributes.items():
        assert getattr(error, name) == value, name
    assert error.request_id is not None
    assert error.request_id.startswith("req_")
    assert error.message == rejection.message


def test_bad_key_is_an_authentication_error(server: FakeResponsesServer) -> None:
    with (
        SSETransport(server.http_base_url, api_key="sk-wrong-0123456789") as sse,
        pytest.raises(AuthenticationError) as info,
    ):
        sse.create(body())
    assert info.value.status_code == 401
    assert "sk-wrong-0123456789" not in str(info.value) + repr(info.value.headers)


def test_validation_error_keeps_param(server: FakeResponsesServer, transport: SSETransport) -> None:
    with pytest.raises(APIError) as info:
        transport.create({"model": "m", "input": 5})
    assert (info.value.status_code, info.value.param, info.value.code) == (
        400,
        "input",
        "invalid_type",
    )


def test_not_an_event_stream() -> None:
    response = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    with (
        FixedResponseServer(response) as fixed,
        SSETransport(f"http://127.0.0.1:{fixed.port}/v1", api_key=KEY) as sse,
    ):
        with pytest.raises(ProtocolError, match="expected an event stream"):
            sse.create(body())


def test_error_body_that_is_not_json() -> None:
    response = (
        b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n"
        b"Content-Length: 11\r\n\r\n<h1>bad</h1"
    )
    with (
        FixedResponseServer(response) as fixed,
        SSETransport(f"http://127.0.0.1:{fixed.port}/v1", api_key=KEY) as sse,
    ):
        with pytest.raises(APIError) as info:
            sse.create(body())
    assert info.value.status_code == 502
    assert "HTTP 502" in str(info.value)
    assert info.value.retryable


def test_redirects_are_not_followed() -> None:
    response = (
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:1/elsewhere\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    with (
        FixedResponseServer(response) as fixed,
        SSETransport(f"http://127.0.0.1:{fixed.port}/v1", api_key=KEY) as sse,
    ):
        with pytest.raises(APIError) as info:
            sse.create(body())
    assert info.value.status_code == 307


def test_connection_refused_is_a_connect_error() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with SSETransport(f"http://127.0.0.1:{port}/v1", api_key=KEY) as sse:
        with pytest.raises(ConnectError) as info:
            sse.create(body())
    assert info.value.retryable


def test_base_url_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="http"):
        SSETransport("ws://127.0.0.1/v1", api_key=KEY)


def test_cut_mid_event(server: FakeResponsesServer, transport: SSETransport) -> None:
    server.inject(CutBody(after_events=4))
    received: list[ServerEvent] = []
    with pytest.raises(ConnectionClosed) as info:
        received.extend(transport.create(body()))
    assert len(received) == 4
    assert info.value.retryable


def test_cut_at_an_event_boundary(server: FakeResponsesServer, transport: SSETransport) -> None:
    server.inject(CloseSocket(after_events=3))
    received: list[ServerEvent] = []
    with pytest.raises(ConnectionClosed):
        received.extend(transport.create(body()))
    assert len(received) == 3


def test_body_ending_early_without_error(
    server: FakeResponsesServer, transport: SSETransport
) -> None:
    server.model = ReplayModel(
        [RawFrames(({"type": "response.created", "response": {"id": "r"}},))]
    )
    with pytest.raises(ConnectionClosed, match="ended before the response's terminal event"):
        list(transport.create(body()))


def test_done_sentinel_before_terminal(
    server: FakeResponsesServer, transport: SSETransport
) -> None:
    server.model = ReplayModel(
        [RawFrames(({"type": "response.created", "response": {"id": "r"}}, "[DONE]"))]
    )
    with pytest.raises(ConnectionClosed, match=r"\[DONE\]"):
        list(transport.create(body()))


def test_bad_event_data_is_a_protocol_error(
    server: FakeResponsesServer, transport: SSETransport
) -> None:
    server.inject(BadFrame(after_events=1))
    received: list[ServerEvent] = []
    with pytest.raises(ProtocolError):
        received.extend(transport.create(body()))
    assert [e.type for e in received] == ["response.created"]


def test_read_timeout_is_a_stream_timeout(server: FakeResponsesServer) -> None:
    server.inject(Stall(30, after_events=2))
    with SSETransport(server.http_base_url, api_key=KEY, timeout=(5, 0.3)) as sse:
        received: list[ServerEvent] = []
        with pytest.raises(StreamTimeout) as info:
            received.extend(sse.create(body()))
        assert info.value.phase == "idle"
        assert len(received) == 2
        assert list(sse.create(body()))[-1].type == "response.completed"


def test_headers_timeout_is_a_stream_timeout(server: FakeResponsesServer) -> None:
    server.inject(Stall(30), transport="sse")
    server.engine.latency = LatencyModel(time_to_first_event=30)
    with SSETransport(server.http_base_url, api_key=KEY, timeout=0.3) as sse:
        with pytest.raises(StreamTimeout):
            list(sse.create(body()))


def test_early_break_closes_the_response(
    server: FakeResponsesServer, transport: SSETransport
) -> None:
    server.model = ScriptedModel([" ".join(["word"] * 200)], then="repeat")
    stream = transport.create(body())
    for event in stream:
        if event.type == "response.output_text.delta":
            break
    stream.close()
    assert stream._response.raw.closed
    assert list(transport.create(body()))[-1].type == "response.completed"


def test_api_error_event_mid_stream(server: FakeResponsesServer, transport: SSETransport) -> None:
    server.model = ScriptedModel([[Text("partial"), Failure("server_error", "boom")]])
    events = list(transport.create(body()))
    assert isinstance(events[-1], ErrorEvent)  # the error event ends the response
    assert events[-1].code == "server_error"


def test_shared_session_is_not_closed(server: FakeResponsesServer) -> None:
    session = requests.Session()
    sse = SSETransport(server.http_base_url, api_key=KEY, session=session)
    list(sse.create(body()))
    sse.close()
    assert session.post(
        f"{server.http_base_url}/responses",
        json=body(),
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    ).ok
    session.close()


def test_close_closes_pooled_connections_at_once(server: FakeResponsesServer) -> None:
    sse = SSETransport(server.http_base_url, api_key=KEY)
    events = sse.create(body())  # still referenced below: it keeps urllib3's pool alive
    assert list(events)[-1].type == "response.completed"
    assert server.stats.active_connections == 1  # pooled for the next request
    sse.close()
    closed = wait_for(lambda: server.stats.active_connections == 0)
    assert closed, "close() left a pooled connection open"
    assert events.terminal is not None


@pytest.mark.parametrize(
    "path", sorted(RECORDED.glob("*.chunks.txt")), ids=lambda p: p.name.replace(".chunks.txt", "")
)
def test_recorded_streams_parse_over_http(path: Any) -> None:
    streams = recorded_streams(path)
    with FakeResponsesServer(latency=FAST, model=ReplayModel.from_recording(path)) as emulator:
        with SSETransport(emulator.http_base_url, api_key=None) as sse:
            for stream in streams:
                if stream[-1]["type"] not in ("response.completed", "response.failed", "error"):
                    continue
                # the first terminal event ends a response: openai-error.1 sends an error then a
                # response.failed, and the reader stops at the error
                end = next(i for i, e in enumerate(stream) if e["type"] in TERMINAL)
                assert [e.raw for e in sse.create(body())] == stream[: end + 1]


# -- the same events over both transports -------------------------------------------------------

SCRIPT = [
    [
        Reasoning(summary=("Think.",)),
        Text("Let me check.", phase="commentary"),
        FunctionCall("f", {"x": [1, "é"]}, call_id="call_1"),
    ],
    "Done: the answer is 42.",
]


def run_both(
    turns: list[dict[str, Any]],
) -> tuple[list[list[ServerEvent]], list[list[ServerEvent]]]:
    with (
        FakeResponsesServer(latency=FAST, seed=3, model=ScriptedModel(SCRIPT)) as a,
        WebSocketConnection(a.ws_url, api_key=None) as ws,
    ):
        over_ws = [list(ws.create(turn)) for turn in turns]
    with (
        FakeResponsesServer(latency=FAST, seed=3, model=ScriptedModel(SCRIPT)) as b,
        SSETransport(b.http_base_url, api_key=None) as sse,
    ):
        over_sse = [list(sse.create(turn)) for turn in turns]
    return over_ws, over_sse


def comparable(events: list[ServerEvent]) -> list[tuple[str, Any]]:
    out = []
    for event in events:
        raw = json.loads(json.dumps(event.raw))
        if isinstance(raw.get("response"), dict):
            raw["response"].pop("created_at")
        out.append((type(event).__name__, raw))
    return out


def test_same_scripted_turns_give_equal_event_sequences() -> None:
    turns = [body("q", include=["reasoning.encrypted_content"], store=True)]
    over_ws, over_sse = run_both(turns)
    assert [comparable(t) for t in over_ws] == [comparable(t) for t in over_sse]
    assert len(over_ws[0]) > 20


def test_connections_are_reused_between_requests(
    server: FakeResponsesServer, transport: SSETransport
) -> None:
    for _ in range(3):
        assert list(transport.create(body()))[-1].type == "response.completed"
    assert server.stats.connections == 1


def test_a_body_left_open_after_the_terminal_event_does_not_hold_us() -> None:
    import time

    from tests.transports.servers import HoldingServer

    event = (
        b'data: {"type":"response.completed",'
        b'"response":{"id":"r","status":"completed","output":[]}}\n\n'
    )
    response = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n" % (len(event), event)
    )
    with (
        HoldingServer(response) as holding,
        SSETransport(f"http://127.0.0.1:{holding.port}/v1", api_key=KEY) as sse,
    ):
        started = time.monotonic()
        events = list(sse.create(body()))
        # the terminal event is returned at once; the end of the body gets DRAIN_GRACE after it
        # (the old drain waited a second)
        assert time.monotonic() - started < 0.5 * TIME_FACTOR
    assert [e.type for e in events] == ["response.completed"]


def test_a_spent_turn_budget_is_a_timeout_before_anything_is_sent(
    server: FakeResponsesServer,
) -> None:
    from openai_ws.transports._common import Deadline

    transport = SSETransport(server.http_base_url, api_key=KEY)
    spent = Deadline(0.0)
    with pytest.raises(StreamTimeout) as info:  # not requests' ValueError for a 0 s timeout
        transport.open(body(), spent)
    assert info.value.phase == "connect"
    assert server.requests == []
    transport.close()
