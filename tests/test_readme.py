"""README.md's Python code block, run as written against the emulator.

The block is read from README.md at test time, so the test fails as soon as the README drifts
from what works: a happy agent loop, a wrong API key, and a turn the server fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openai_ws import AssistantMessage, ToolResultMessage
from openai_ws.exceptions import APIError, AuthenticationError
from openai_ws.testing import FakeResponsesServer, LatencyModel, Rejection

README = Path(__file__).resolve().parent.parent / "README.md"
KEY = "sk-readme-test"


def readme_python_block() -> str:
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text("utf-8"), re.M | re.S)
    assert len(blocks) == 1, f"README.md should have one python block, found {len(blocks)}"
    return str(blocks[0])


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeResponsesServer]:
    with FakeResponsesServer(api_key=KEY, latency=LatencyModel.instant()) as emulator:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", emulator.http_base_url)
        yield emulator


def run_readme(namespace: dict[str, Any]) -> None:
    code = compile(readme_python_block(), str(README), "exec")
    try:
        exec(code, namespace)  # noqa: S102 (our own README)
    finally:
        client = namespace.get("client")
        if client is not None:
            client.close()


def test_the_block_runs_a_tool_calling_loop(
    server: FakeResponsesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace: dict[str, Any] = {}
    run_readme(namespace)
    messages = namespace["ctx"].messages
    assert isinstance(messages[-1], AssistantMessage)
    assert messages[-1].stop_reason == "stop"
    assert any(isinstance(m, ToolResultMessage) for m in messages)
    assert capsys.readouterr().out.strip()  # the answer was printed as it streamed
    chained = [("previous_response_id" in r.body) for r in server.requests]
    assert chained[0] is False
    assert len(chained) > 1
    assert all(chained[1:])  # later turns sent only what was new


def test_a_wrong_key_raises_authentication_error(
    server: FakeResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key")
    namespace: dict[str, Any] = {}
    with pytest.raises(AuthenticationError) as failed:
        run_readme(namespace)
    assert failed.value.status_code == 401
    assert "sk-wrong-key" not in str(failed.value)
    assert len(namespace["ctx"].messages) == 1  # nothing was appended


def test_a_failing_turn_raises_its_api_error(server: FakeResponsesServer) -> None:
    # the first turn calls the tool; the second (carrying the tool result) is rejected
    server.inject(
        Rejection(status=400, code="invalid_value", message="The tool result was refused."),
        match=lambda body: "previous_response_id" in body,
    )
    namespace: dict[str, Any] = {}
    with pytest.raises(APIError, match="The tool result was refused") as failed:
        run_readme(namespace)
    assert not isinstance(failed.value, AuthenticationError)
    messages = namespace["ctx"].messages
    # the first turn's message and its tool results; not the failed turn's
    assert isinstance(messages[1], AssistantMessage)
    assert messages[1].stop_reason == "toolUse"
    assert isinstance(messages[-1], ToolResultMessage)
