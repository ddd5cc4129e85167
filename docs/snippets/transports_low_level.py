"""The two transports on their own: the same request over WebSocket mode and over HTTP."""

from openai_ws import SSETransport, WebSocketConnection
from openai_ws.testing import FakeResponsesServer

with FakeResponsesServer(api_key="sk-local-test-key") as server:
    with WebSocketConnection(server.ws_url, api_key="sk-local-test-key") as connection:
        for event in connection.create({"model": "gpt-5.2", "input": "Hello", "store": False}):
            if event.type == "response.output_text.delta":
                print(event.delta, end="")  # type: ignore[attr-defined]
        print()
        # the server keeps this response in the socket's cache: the next turn may chain from it
        print("chain from:", connection.previous_response_id)
        assert connection.previous_response_id is not None

    with SSETransport(server.http_base_url, api_key="sk-local-test-key") as http:
        events = list(http.create({"model": "gpt-5.2", "input": "Hello"}))
        print(events[-1].type)  # response.completed
        assert events[-1].type == "response.completed"
