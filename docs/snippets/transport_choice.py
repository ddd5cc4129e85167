"""Choosing a transport, and seeing which one carried a turn."""

import logging

from openai_ws import Client, Context, StreamOptions, UserMessage
from openai_ws.testing import FakeResponsesServer, RefuseUpgrade

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

with (
    FakeResponsesServer() as server,
    Client(api_key="sk-test", base_url=server.http_base_url) as client,
):
    ctx = Context(messages=[UserMessage("Hello")])

    stream = client.stream("gpt-5.2", ctx, session_id="a")  # transport="auto" (the default)
    stream.result()
    print(stream.transport, stream.attempts)  # websocket ['websocket: done']

    server.inject(RefuseUpgrade(426))  # this server refuses WebSocket mode once...
    stream = client.stream("gpt-5.2", ctx, session_id="b")
    stream.result()
    print(stream.transport, stream.attempts)  # sse ['websocket: ConnectError', 'sse: done']
    assert stream.transport == "sse"

    # forced transports: "websocket" surfaces its errors, "sse" never opens a socket
    print(client.stream("gpt-5.2", ctx, transport="sse").result().text)
    print(
        client.stream("gpt-5.2", ctx, transport="websocket", options=StreamOptions(timeout=30))
        .result()
        .text
    )
