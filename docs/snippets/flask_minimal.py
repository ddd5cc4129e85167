"""The smallest Flask view that streams an answer to the browser as server-sent events."""

from flask import Flask, Response, request, stream_with_context

from openai_ws import Client, Context, UserMessage
from openai_ws.testing import FakeResponsesServer
from openai_ws.web import sse_body

server = FakeResponsesServer().start()  # for the real API: client = Client()
client = Client(api_key="sk-test", base_url=server.http_base_url)  # one client for the whole app
app = Flask(__name__)


@app.get("/ask")
def ask() -> Response:
    context = Context(messages=[UserMessage(request.args["q"])])
    events = client.stream("gpt-5.2", context, session_id=request.cookies.get("chat", "anonymous"))
    return Response(stream_with_context(sse_body(events)), mimetype="text/event-stream")


with app.test_client() as browser:
    body = browser.get("/ask?q=Hello").get_data(as_text=True)
    print(body.splitlines()[:2])  # ['event: start', 'data: {"type": "start"}']
    assert 'event: done\ndata: {"type": "done", "reason": "stop"' in body
client.close()
server.close()
