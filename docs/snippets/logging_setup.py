"""Seeing what openai-ws does: connections at INFO, fallbacks at WARNING, frames at DEBUG."""

import logging

from openai_ws import Client, Context, UserMessage
from openai_ws.testing import FakeResponsesServer

logging.basicConfig(format="%(levelname)-7s %(name)s: %(message)s")
logging.getLogger("openai_ws").setLevel(logging.INFO)  # DEBUG adds every frame (keys redacted)

with (
    FakeResponsesServer() as server,
    Client(api_key="sk-test", base_url=server.http_base_url) as client,
):
    print(
        client.stream("gpt-5.2", Context(messages=[UserMessage("Hello")]), session_id="s")
        .result()
        .text
    )
