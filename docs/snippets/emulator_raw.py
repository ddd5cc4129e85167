"""Drive the emulator with nothing but websocket-client and requests."""

import json

import requests
import websocket

from openai_ws.testing import FakeResponsesServer, LatencyModel, ScriptedModel

with FakeResponsesServer(model=ScriptedModel(["Hello from the emulator."])) as server:
    # WebSocket mode: one JSON text frame per request, one per event
    ws = websocket.create_connection(server.ws_url)
    ws.send(json.dumps({"type": "response.create", "model": "gpt-5.2", "input": "Hi"}))
    while True:
        event = json.loads(ws.recv())
        if event["type"] == "response.output_text.delta":
            print(event["delta"], end="", flush=True)
        if event["type"] in ("response.completed", "response.failed", "error"):
            break
    ws.close()
    print()

    # HTTP: the same API, as a non-streaming POST (the script is used up: the emulator says so)
    reply = requests.post(
        f"{server.http_base_url}/responses", json={"model": "m", "input": "Hi"}, timeout=10
    )
    print(reply.status_code, reply.json()["error"]["message"])
    assert reply.status_code == 500

    print(server.stats.requests_by_transport)  # {'websocket': 1, 'http': 1}
    assert server.stats.requests_by_transport == {"websocket": 1, "http": 1}

assert LatencyModel.instant().first_event(10_000) == 0
