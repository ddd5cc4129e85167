"""StreamOptions validation and the request body a turn sends."""

from __future__ import annotations

from typing import Any

import pytest

from openai_ws.messages import Context, Tool, UserMessage
from openai_ws.options import StreamOptions, build_request

CTX = Context(
    system_prompt="Be terse.",
    messages=[UserMessage("Hi")],
    tools=[Tool("f", "does f", {"type": "object", "properties": {}})],
)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"temperature": 3}, ValueError),
        ({"temperature": True}, ValueError),
        ({"top_p": 1.5}, ValueError),
        ({"max_output_tokens": 0}, ValueError),
        ({"max_output_tokens": 2.5}, ValueError),
        ({"timeout": 0}, ValueError),
        ({"timeout": "5"}, ValueError),
        ({"store": "yes"}, TypeError),
        ({"metadata": ["a"]}, TypeError),
        ({"include": "reasoning.encrypted_content"}, TypeError),
        ({"tool_choice": 5}, TypeError),
        ({"on_payload": "not callable"}, TypeError),
        ({"warm_up": 1}, TypeError),
    ],
)
def test_bad_options_fail_at_once(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        StreamOptions(**kwargs)


def test_defaults() -> None:
    assert build_request("m", CTX, StreamOptions()) == {
        "model": "m",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}
        ],
        "instructions": "Be terse.",
        "tools": [
            {
                "type": "function",
                "name": "f",
                "description": "does f",
                "parameters": {"type": "object", "properties": {}},
            }
        ],
        "store": False,
    }


def test_every_option_lands_in_the_body() -> None:
    options = StreamOptions(
        temperature=0.3,
        top_p=0.9,
        max_output_tokens=500,
        tool_choice={"type": "function", "name": "f"},
        reasoning_effort="low",
        reasoning_summary="auto",
        text_verbosity="low",
        store=True,
        metadata={"user": "42"},
        include=["message.output_text.logprobs"],
        instructions="Override.",
        extra_body={"truncation": "auto", "temperature": 0.4},
    )
    body = build_request("m", CTX, options)
    assert body["temperature"] == 0.4  # extra_body wins
    assert (body["top_p"], body["max_output_tokens"]) == (0.9, 500)
    assert body["tool_choice"] == {"type": "function", "name": "f"}
    assert body["reasoning"] == {"effort": "low", "summary": "auto"}
    assert body["text"] == {"verbosity": "low"}
    assert body["store"] is True
    assert body["metadata"] == {"user": "42"}
    assert body["include"] == ["message.output_text.logprobs"]
    assert body["instructions"] == "Override."
    assert body["truncation"] == "auto"


def test_reasoning_without_store_includes_encrypted_content() -> None:
    assert build_request("m", CTX, StreamOptions(reasoning_effort="high"))["include"] == [
        "reasoning.encrypted_content"
    ]
    assert "include" not in build_request(
        "m", CTX, StreamOptions(reasoning_effort="high", store=True)
    )
    assert "include" not in build_request("m", CTX, StreamOptions())


def test_no_system_prompt_and_no_tools() -> None:
    body = build_request(
        "m", Context(messages=[UserMessage("x")]), StreamOptions(tool_choice="auto")
    )
    assert "instructions" not in body
    assert "tools" not in body
    assert body["tool_choice"] == "auto"


def test_an_empty_context_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(ValueError, match="the context is empty"):
        build_request("m", Context(), StreamOptions())
    # a warm-up context (instructions or tools, no message yet) and extra_body input still go
    assert "instructions" in build_request("m", Context(system_prompt="Be terse."), StreamOptions())
    assert build_request("m", Context(tools=CTX.tools), StreamOptions())["input"] == []
    body = build_request("m", Context(), StreamOptions(extra_body={"input": "Hi"}))
    assert body["input"] == "Hi"


def test_client_stream_refuses_an_empty_context_and_a_bogus_transport_at_once() -> None:
    from openai_ws import Client
    from openai_ws.exceptions import ConfigurationError

    # nothing listens at this address: both errors are raised before any connection is tried
    with Client(api_key="sk-test", base_url="http://127.0.0.1:9/v1") as client:
        with pytest.raises(ValueError, match="the context is empty"):
            client.stream("m", Context())
        with pytest.raises(ConfigurationError, match="transport must be one of"):
            client.stream("m", CTX, transport="bogus")
    with pytest.raises(ConfigurationError, match="transport must be one of"):
        Client(api_key="sk-test", transport="bogus")
