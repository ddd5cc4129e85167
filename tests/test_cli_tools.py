"""`openai-ws chat --emulator` offers tools, so that a newcomer sees a tool call happen."""

from __future__ import annotations

import io
import subprocess
import sys

from openai_ws import Client
from openai_ws.cli import CHAT_TOOLS, run_chat
from openai_ws.testing import FakeResponsesServer, LatencyModel


def test_chat_runs_the_models_tool_calls_and_shows_them() -> None:
    lines = iter(["What's the weather in Paris and Rome?", "What time is it in Tokyo?"])

    def read(prompt: str) -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    out = io.StringIO()
    with (
        FakeResponsesServer(latency=LatencyModel.instant()) as server,
        Client(api_key="sk-test-0123456789", base_url=server.http_base_url) as client,
    ):
        assert run_chat(client, "m", read=read, out=out, tools=CHAT_TOOLS) == 0
    text = out.getvalue()
    assert '[tool] get_weather({"city": "Paris"}) -> ' in text
    assert '[tool] get_weather({"city": "Rome"}) -> ' in text
    assert '[tool] get_local_time({"city": "Tokyo"}) -> ' in text
    assert "Here is what I found. Paris:" in text
    assert server.requests[0].body["tools"][0]["name"] == "get_weather"


def test_chat_emulator_names_its_tools() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "openai_ws", "chat", "--emulator"],
        input="/quit\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Tools: get_weather, get_local_time" in done.stdout
