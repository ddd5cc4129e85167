"""What openai-ws logs: connections at INFO, fallbacks at WARNING, frames at DEBUG, never a key."""

from __future__ import annotations

import logging

import pytest

from openai_ws import Client, Context, UserMessage
from openai_ws.testing import CloseSocket, FakeResponsesServer, LatencyModel, RefuseUpgrade

KEY = "sk-proj-LogSecret0123456789abcdefgh"


def test_logging_levels_and_no_key(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.DEBUG, logger="openai_ws"),
        FakeResponsesServer(latency=LatencyModel.instant(), api_key=KEY) as server,
        Client(api_key=KEY, base_url=server.http_base_url, headers={"X-Trace": KEY}) as client,
    ):
        client.stream(
            "m", Context(messages=[UserMessage(f"my key is {KEY}")]), session_id="s"
        ).result()
        server.inject(CloseSocket(after_events=1, code=1011))
        client.stream("m", Context(messages=[UserMessage("x")]), session_id="s").result()
        server.inject(RefuseUpgrade(426), times=None)
        client.stream("m", Context(messages=[UserMessage("x")]), session_id="t").result()
    records = [r for r in caplog.records if r.name.startswith("openai_ws")]
    text = "\n".join(r.getMessage() for r in records)
    assert KEY not in text
    assert KEY not in caplog.text
    levels = {r.levelname for r in records}
    assert {"DEBUG", "INFO", "WARNING"} <= levels
    debug = [r.getMessage() for r in records if r.levelno == logging.DEBUG]
    assert any("send {" in m for m in debug)  # frames sent
    assert any("recv {" in m for m in debug)  # frames received
    assert any("POST" in m for m in debug)  # HTTP requests
    info = [r.getMessage() for r in records if r.levelno == logging.INFO]
    assert any("connected to ws://127.0.0.1" in m for m in info)
    assert any("closed" in m for m in info)
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert sum("using HTTP streaming" in m for m in warnings) == 1
    assert any("ended: the server closed the connection with code 1011" in m for m in warnings)


def test_the_package_logger_has_a_null_handler() -> None:
    handlers = logging.getLogger("openai_ws").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)
