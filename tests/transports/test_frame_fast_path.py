"""The reader's fast path for whole text frames (``_SocketReader.text_frame``) against exact
bytes: fragmented messages, control frames between fragments, frames split across reads, and
the max_frame_size boundary still behave as websocket-client makes them behave."""

from __future__ import annotations

import contextlib
import json
import socket
import time

import pytest

from openai_ws.exceptions import ProtocolError
from openai_ws.transports import WebSocketConnection
from tests.conftest import KEY
from tests.transports.servers import _Listener, upgrade_answer


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    size = len(payload)
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        return bytes((first, size)) + payload
    if size < 65536:
        return bytes((first, 126)) + size.to_bytes(2, "big") + payload
    return bytes((first, 127)) + size.to_bytes(8, "big") + payload


def event(kind: str, **fields: object) -> bytes:
    return json.dumps({"type": kind, **fields}).encode()


class ScriptServer(_Listener):
    """Answers the upgrade, then each request with ``script(number)``: a list of byte strings,
    each written with its own ``sendall`` (a short pause between them, so that they arrive in
    separate reads)."""

    def __init__(self, script: object) -> None:
        super().__init__()
        self.script = script

    def handle(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            client.sendall(upgrade_answer(self.read_head(client)))
            number = 0
            while client.recv(65536):
                for piece in self.script(number):  # type: ignore[operator]
                    client.sendall(piece)
                    time.sleep(0.01)  # not a synchronisation: only splits the reads
                number += 1


def completed(rid: str) -> bytes:
    return event("response.completed", response={"id": rid, "status": "completed", "output": []})


def test_fragments_control_frames_and_split_frames_arrive_whole() -> None:
    text = "x" * 300

    def script(number: int) -> list[bytes]:
        rid = f"resp_{number}"
        delta = event(
            "response.output_text.delta",
            item_id="m",
            output_index=0,
            content_index=0,
            delta=text,
        )
        whole = frame(1, delta)
        # a fragmented message with a ping between its fragments, then one split across reads
        fragmented = (
            frame(1, delta[:50], fin=False) + frame(9, b"hi") + frame(0, delta[50:], fin=True)
        )
        split = frame(1, delta)
        return [
            frame(1, event("response.created", response={"id": rid, "status": "in_progress"}))
            + whole
            + fragmented
            + split[:3],  # the header of a frame whose length and payload come later
            split[3:100],
            split[100:] + whole + frame(1, completed(rid)),
        ]

    with (
        ScriptServer(script) as server,
        WebSocketConnection(f"ws://127.0.0.1:{server.port}/v1/responses", api_key=KEY) as conn,
    ):
        for number in range(2):
            events = list(conn.create({"model": "m", "input": "hi"}, timeout=10))
            assert [e.type for e in events] == [
                "response.created",
                *["response.output_text.delta"] * 4,
                "response.completed",
            ]
            assert all(e.raw["delta"] == text for e in events[1:5])
            assert events[-1].raw["response"]["id"] == f"resp_{number}"


@pytest.mark.parametrize(("size", "refused"), [(2000, False), (2001, True)])
def test_the_frame_size_limit_holds_on_the_fast_path(size: int, refused: bool) -> None:
    def script(number: int) -> list[bytes]:
        rid = f"resp_{number}"
        created = event("response.created", response={"id": rid, "status": "in_progress"})
        padded = created[:-1] + b', "pad": "' + b"p" * (size - len(created) - 11) + b'"}'
        assert len(padded) == size
        # after a first frame, so that the padded one is read from the buffer (the fast path)
        first = frame(1, event("response.queued", response={"id": rid, "status": "queued"}))
        return [first + frame(1, padded) + frame(1, completed(rid))]

    with (
        ScriptServer(script) as server,
        WebSocketConnection(
            f"ws://127.0.0.1:{server.port}/v1/responses", api_key=KEY, max_frame_size=2000
        ) as conn,
    ):
        if refused:
            with pytest.raises(ProtocolError, match="exceeds max_frame_size"):
                list(conn.create({"model": "m", "input": "hi"}, timeout=10))
        else:
            events = list(conn.create({"model": "m", "input": "hi"}, timeout=10))
            assert [e.type for e in events] == [
                "response.queued",
                "response.created",
                "response.completed",
            ]
