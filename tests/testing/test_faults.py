"""Fault injection, verified with raw websocket-client and requests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import websocket

from openai_ws.testing import (
    BadFrame,
    CloseSocket,
    CutBody,
    FakeResponsesServer,
    LatencyModel,
    RefuseUpgrade,
    Rejection,
    ScriptedModel,
    Stall,
)

from .helpers import connect, parse_sse, sse_turn, ws_turn

TEXT = "one two three four five six"


@pytest.fixture
def server() -> Iterator[FakeResponsesServer]:
    with FakeResponsesServer(
        latency=LatencyModel.instant(), model=ScriptedModel([TEXT], then="repeat")
    ) as emulator:
        yield emulator


def read_until_closed(ws: websocket.WebSocket) -> tuple[list[str | bytes], int | None]:
    """Frames until the socket ends, and the close code (None when there was no close frame)."""
    frames: list[str | bytes] = []
    while True:
        try:
            opcode, data = ws.recv_data(control_frame=True)
        except websocket.WebSocketConnectionClosedException:
            return frames, None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
            return frames, code
        if opcode == websocket.ABNF.OPCODE_TEXT:
            frames.append(data.decode())
        elif opcode == websocket.ABNF.OPCODE_BINARY:
            frames.append(data)


@pytest.mark.parametrize("status", [426, 401, 500])
def test_refuse_upgrade(server: FakeResponsesServer, status: int) -> None:
    server.inject(RefuseUpgrade(status, headers={"x-reason": "test"}))
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        connect(server.ws_url)
    assert info.value.status_code == status
    assert info.value.resp_headers["x-reason"] == "test"
    assert (
        json.loads(info.value.resp_body)["error"]["message"]
        == "WebSocket mode is not available here."
    )
    ws = connect(server.ws_url)  # used once: the next handshake succeeds
    ws.close()
    assert [h.status for h in server.handshakes] == [status, 101]


def test_refuse_every_upgrade_until_cleared(server: FakeResponsesServer) -> None:
    server.inject(RefuseUpgrade(426), times=None)
    for _ in range(3):
        with pytest.raises(websocket.WebSocketBadStatusException):
            connect(server.ws_url)
    server.clear_faults()
    connect(server.ws_url).close()
    assert server.faults.injected == {"RefuseUpgrade": 3}


def test_refuse_upgrade_matching_the_handshake_headers(server: FakeResponsesServer) -> None:
    seen: list[dict[str, str]] = []

    def mine(headers: Any) -> bool:
        seen.append(dict(headers))
        return bool(headers.get("x-tenant") == "b")

    server.inject(RefuseUpgrade(401), match=mine)
    connect(server.ws_url, header=["X-Tenant: a"]).close()  # not this one
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        connect(server.ws_url, header=["X-Tenant: b"])
    assert info.value.status_code == 401
    connect(server.ws_url, header=["X-Tenant: b"]).close()  # used up
    assert [h.status for h in server.handshakes] == [101, 401, 101]
    assert [s["x-tenant"] for s in seen] == ["a", "b"]  # names lower-cased
    assert all(s.get("authorization", "<redacted>") == "<redacted>" for s in seen)


def test_close_1006_drops_the_socket_without_a_close_frame(server: FakeResponsesServer) -> None:
    server.inject(CloseSocket(after_events=3, code=1006))
    ws = connect(server.ws_url)
    ws.send(json.dumps({"type": "response.create", "model": "m", "input": "x"}))
    frames, code = read_until_closed(ws)
    assert code is None
    assert [json.loads(f)["type"] for f in frames] == [  # type: ignore[arg-type]
        "response.created",
        "response.in_progress",
        "response.output_item.added",
    ]


@pytest.mark.parametrize("code", [1011, 1008, 1001, 1000, 4000])
def test_close_with_a_code(server: FakeResponsesServer, code: int) -> None:
    server.inject(CloseSocket(after_events=1, code=code, reason="bye"))
    ws = connect(server.ws_url)
    ws.send(json.dumps({"type": "response.create", "model": "m", "input": "x"}))
    frames, received = read_until_closed(ws)
    ws.close()
    assert received == code
    assert len(frames) == 1


def test_close_after_the_whole_reply(server: FakeResponsesServer) -> None:
    server.inject(CloseSocket(after_events=1000, code=1011))
    ws = connect(server.ws_url)
    ws.send(json.dumps({"type": "response.create", "model": "m", "input": "x"}))
    frames, code = read_until_closed(ws)
    ws.close()
    assert code == 1011
    assert json.loads(frames[-1])["type"] == "response.completed"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "expected"), [("non_json", "{not json"), ("binary", b"\x00\x01binary")]
)
def test_bad_frame_then_the_rest(
    server: FakeResponsesServer, kind: str, expected: str | bytes
) -> None:
    server.inject(BadFrame(after_events=2, kind=kind))
    ws = connect(server.ws_url)
    ws.send(json.dumps({"type": "response.create", "model": "m", "input": "x"}))
    frames: list[str | bytes] = []
    while True:
        opcode, data = ws.recv_data()
        frame = data if opcode == websocket.ABNF.OPCODE_BINARY else data.decode()
        frames.append(frame)
        if isinstance(frame, str) and frame.startswith('{"type":"response.completed'):
            break
    ws.close()
    assert frames[2] == expected
    assert json.loads(frames[1])["type"] == "response.in_progress"  # type: ignore[arg-type]


def test_stall_makes_a_client_deadline_expire(server: FakeResponsesServer) -> None:
    server.inject(Stall(30, after_events=2))
    ws = connect(server.ws_url, timeout=0.3)
    ws.send(json.dumps({"type": "response.create", "model": "m", "input": "x"}))
    assert json.loads(ws.recv())["type"] == "response.created"
    assert json.loads(ws.recv())["type"] == "response.in_progress"
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv()
    ws.close()


def test_rejection_fault_over_http_carries_retry_after(server: FakeResponsesServer) -> None:
    server.inject(
        Rejection(
            code="rate_limit_exceeded",
            message="slow down",
            status=429,
            type="requests",
            headers={"Retry-After": "2"},
        ),
        transport="sse",
    )
    response = requests.post(
        f"{server.http_base_url}/responses",
        json={"model": "m", "input": "x", "stream": True},
        timeout=10,
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.headers["x-request-id"].startswith("req_")
    assert response.json() == {
        "error": {
            "type": "requests",
            "code": "rate_limit_exceeded",
            "message": "slow down",
            "param": None,
        }
    }
    assert (
        sse_turn(server.http_base_url, {"model": "m", "input": "x"})[-1]["type"]
        == "response.completed"
    )


@pytest.mark.parametrize("status", [500, 503])
def test_rejection_fault_over_websocket_is_an_error_event(
    server: FakeResponsesServer, status: int
) -> None:
    server.inject(
        Rejection(code="server_error", message="oops", status=status, type="server_error"),
        transport="websocket",
    )
    ws = connect(server.ws_url)
    error = ws_turn(ws, {"model": "m", "input": "x"})[-1]
    assert error == {
        "type": "error",
        "status": status,
        "error": {"type": "server_error", "code": "server_error", "message": "oops", "param": None},
    }
    assert ws_turn(ws, {"model": "m", "input": "x"})[-1]["type"] == "response.completed"
    ws.close()


def test_cut_body_mid_event(server: FakeResponsesServer) -> None:
    server.inject(CutBody(after_events=4))
    response = requests.post(
        f"{server.http_base_url}/responses",
        json={"model": "m", "input": "x", "stream": True},
        stream=True,
        timeout=10,
    )
    received = b""
    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # noqa: PT012 - reading is the act
        for chunk in response.iter_content(None):
            received += chunk
    complete, _, partial = received.rpartition(b"\n\n")
    assert len(parse_sse(complete + b"\n\n")) == 4
    assert partial.startswith(b"event: response.output_text.delta\ndata: {")
    assert not partial.endswith(b"}")


def test_close_fault_over_http_ends_at_an_event_boundary(server: FakeResponsesServer) -> None:
    server.inject(CloseSocket(after_events=3))
    response = requests.post(
        f"{server.http_base_url}/responses",
        json={"model": "m", "input": "x", "stream": True},
        stream=True,
        timeout=10,
    )
    received = b""
    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # noqa: PT012
        for chunk in response.iter_content(None):
            received += chunk
    assert received.endswith(b"\n\n")
    assert len(parse_sse(received)) == 3


@pytest.mark.parametrize(
    ("kind", "marker"), [("non_json", b"data: {not json\n\n"), ("binary", b"data: \xff\xfe")]
)
def test_bad_event_over_http(server: FakeResponsesServer, kind: str, marker: bytes) -> None:
    server.inject(BadFrame(after_events=1, kind=kind), transport="sse")
    response = requests.post(
        f"{server.http_base_url}/responses",
        json={"model": "m", "input": "x", "stream": True},
        timeout=10,
    )
    assert marker in response.content
    assert (
        response.content.rstrip().endswith(b'"sequence_number":11}')
        or b"response.completed" in response.content
    )


def test_faults_target_a_connection_and_match(server: FakeResponsesServer) -> None:
    first = connect(server.ws_url)
    second = connect(server.ws_url)
    ws_turn(first, {"model": "m", "input": "x"})
    target = server.requests[-1].connection
    server.inject(
        Rejection(code="server_error", status=500, type="server_error", message="only you"),
        connection=target,
        times=None,
    )
    server.inject(
        Rejection(code="bad", status=400, message="matched"),
        match=lambda body: body.get("metadata") == {"fail": "yes"},
    )
    assert ws_turn(second, {"model": "m", "input": "x"})[-1]["type"] == "response.completed"
    for _ in range(2):
        assert ws_turn(first, {"model": "m", "input": "x"})[-1]["error"]["message"] == "only you"
    assert (
        ws_turn(second, {"model": "m", "input": "x", "metadata": {"fail": "yes"}})[-1]["error"][
            "message"
        ]
        == "matched"
    )
    assert (
        ws_turn(second, {"model": "m", "input": "x", "metadata": {"fail": "yes"}})[-1]["type"]
        == "response.completed"
    )
    first.close()
    second.close()


def test_fault_rules_validate() -> None:
    from openai_ws.testing.faults import FaultQueue

    queue = FaultQueue()
    with pytest.raises(ValueError, match="positive"):
        queue.add(Stall(1), times=0)
    with pytest.raises(ValueError, match="transport"):
        queue.add(Stall(1), transport="carrier-pigeon")
    with pytest.raises(ValueError, match="WebSocket handshakes only"):
        queue.add(RefuseUpgrade(), transport="sse")
    with pytest.raises(ValueError, match="kind"):
        BadFrame(kind="wobbly")
    queue.add(Stall(1), times=None)
    assert queue.pending == 1
    queue.clear()
    assert queue.pending == 0
