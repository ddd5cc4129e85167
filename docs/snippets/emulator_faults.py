"""Script the model, inject faults, and check what a client sent."""

import json

import websocket

from openai_ws.testing import (
    CloseSocket,
    FakeResponsesServer,
    FunctionCall,
    LatencyModel,
    Reasoning,
    RefuseUpgrade,
    ScriptedModel,
    Text,
)

script = ScriptedModel(
    [
        [
            Reasoning(summary=["The user wants the weather."]),
            FunctionCall("get_weather", {"city": "Paris"}),
        ],
        "It is 18C and sunny in Paris.",
    ]
)
with FakeResponsesServer(model=script, latency=LatencyModel.instant()) as server:
    server.inject(RefuseUpgrade(426))  # the next handshake is refused: a client should fall back
    try:
        websocket.create_connection(server.ws_url)
    except websocket.WebSocketBadStatusException as refused:
        print("refused with", refused.status_code)

    server.inject(CloseSocket(after_events=3, code=1011))  # the next reply is cut by a 1011 close
    ws = websocket.create_connection(server.ws_url)
    ws.send(json.dumps({"type": "response.create", "model": "m", "input": "Weather?"}))
    received = []
    try:
        while True:
            received.append(json.loads(ws.recv())["type"])
    except (websocket.WebSocketException, ValueError):
        pass
    print(received)  # ['response.created', 'response.in_progress', 'response.output_item.added']
    assert received == ["response.created", "response.in_progress", "response.output_item.added"]

    print([request.transport for request in server.requests])  # ['websocket']
    print(server.faults.injected)  # {'RefuseUpgrade': 1, 'CloseSocket': 1}
    assert server.faults.injected == {"RefuseUpgrade": 1, "CloseSocket": 1}
    assert isinstance(Text("unused"), Text)
