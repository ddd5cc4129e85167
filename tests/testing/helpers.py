"""Raw clients for testing the emulator on its own: websocket-client and requests only."""

from __future__ import annotations

import json
from typing import Any

import requests
import websocket

TERMINAL = {
    "response.completed",
    "response.failed",
    "response.incomplete",
    "error",
    "response.done",
}

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def connect(url: str, **kwargs: Any) -> websocket.WebSocket:
    kwargs.setdefault("timeout", 10)
    return websocket.create_connection(url, **kwargs)


def ws_turn(
    ws: websocket.WebSocket, body: dict[str, Any], *, wrap: bool = True
) -> list[dict[str, Any]]:
    """Send one response.create and read events until a terminal one."""
    payload = {"type": "response.create", **body} if wrap else body
    ws.send(json.dumps(payload))
    events = []
    while True:
        event = json.loads(ws.recv())
        events.append(event)
        if event["type"] in TERMINAL:
            return events


def parse_sse(body: bytes) -> list[tuple[str | None, str]]:
    """A deliberately minimal event-stream split (LF only, as the emulator writes)."""
    out = []
    for block in body.decode("utf-8").split("\n\n"):
        if not block.strip():
            continue
        event = None
        data = []
        for line in block.split("\n"):
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        out.append((event, "\n".join(data)))
    return out


def sse_turn(base_url: str, body: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    response = requests.post(
        f"{base_url}/responses", json={**body, "stream": True}, stream=True, timeout=10, **kwargs
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for name, data in parse_sse(response.content):
        event = json.loads(data)
        assert name == event["type"]
        events.append(event)
    return events


def normalise(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop what legitimately differs between two runs: the wall-clock creation time."""
    text = json.dumps(events)
    out: list[dict[str, Any]] = json.loads(text)
    for event in out:
        if isinstance(event.get("response"), dict):
            event["response"].pop("created_at", None)
    return out


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
