"""openai_ws.web: stream events as server-sent events for a browser."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from openai_ws import Client, Context, Tool, UserMessage
from openai_ws.sse import SSEDecoder
from openai_ws.testing import FakeResponsesServer, LatencyModel, Reasoning, ScriptedModel, Text
from openai_ws.web import event_to_dict, sse_body, sse_message

TOOL = Tool("get_weather", "w", {"type": "object", "properties": {"city": {"type": "string"}}})


@pytest.fixture
def client() -> Iterator[tuple[Client, FakeResponsesServer]]:
    with (
        FakeResponsesServer(latency=LatencyModel.instant()) as server,
        Client(api_key="sk-web-test-1234", base_url=server.http_base_url) as c,
    ):
        yield c, server


def decode(body: bytes) -> list[tuple[str, dict[str, object]]]:
    return [(m.event, json.loads(m.data)) for m in SSEDecoder().feed(body)]


def test_a_whole_stream_as_an_event_stream(client: tuple[Client, FakeResponsesServer]) -> None:
    c, server = client
    server.model = ScriptedModel(
        [[Reasoning(summary=("hm",)), Text("Look.", phase="commentary"), Text("Sunny.")]]
    )
    body = b"".join(sse_body(c.stream("m", Context(messages=[UserMessage("x")]))))
    events = decode(body)
    names = [name for name, _ in events]
    assert names[0] == "start"
    assert names[-1] == "done"
    assert all(name == data["type"] for name, data in events)
    deltas = [data for name, data in events if name == "text_delta"]
    assert [(d["delta"], d["commentary"]) for d in deltas] == [("Look.", True), ("Sunny.", False)]
    thinking = [data for name, data in events if name == "thinking_end"]
    assert thinking == [{"type": "thinking_end", "content_index": 0, "content": "hm"}]
    done = events[-1][1]
    assert done["reason"] == "stop"
    assert done["message"]["text"] == "Sunny."  # type: ignore[index]
    assert done["message"]["usage"]["total_tokens"] > 0  # type: ignore[index]


def test_tool_calls_and_errors(client: tuple[Client, FakeResponsesServer]) -> None:
    c, server = client
    events = decode(
        b"".join(
            sse_body(
                c.stream("m", Context(messages=[UserMessage("Weather in Oslo?")], tools=[TOOL]))
            )
        )
    )
    end = next(data for name, data in events if name == "toolcall_end")
    assert end["tool_call"] == {
        "id": end["tool_call"]["id"],
        "name": "get_weather",
        "arguments": {"city": "Oslo"},
    }  # type: ignore[index]
    assert events[-1][1]["message"]["tool_calls"][0]["name"] == "get_weather"  # type: ignore[index]
    from openai_ws.testing import Rejection

    server.inject(Rejection(code="context_length_exceeded", message="too long"))
    error = decode(b"".join(sse_body(c.stream("m", Context(messages=[UserMessage("x")])))))[-1]
    assert error == (
        "error",
        {
            "type": "error",
            "reason": "error",
            "message": "[context_length_exceeded, status 400] too long",
            "code": "context_length_exceeded",
        },
    )


def test_closing_the_body_closes_the_stream(client: tuple[Client, FakeResponsesServer]) -> None:
    c, server = client
    server.model = ScriptedModel([" ".join(["word"] * 50)], then="repeat")
    body = sse_body(c.stream("m", Context(messages=[UserMessage("x")]), session_id="s"))
    next(body)
    next(body)
    body.close()  # what a WSGI server does when the browser goes away
    assert not c._sessions["s"].busy
    assert c.stream("m", Context(messages=[UserMessage("x")]), session_id="s").result().text


def test_sse_message() -> None:
    assert sse_message("note", {"a": "é"}) == 'event: note\ndata: {"a": "é"}\n\n'.encode()
    assert sse_message("text", "two\nlines") == b"event: text\ndata: two\ndata: lines\n\n"
    assert SSEDecoder().feed(sse_message("text", "a\r\nb"))[0].data == "a\nb"
    with pytest.raises(ValueError, match="line break"):
        sse_message("bad\nname", "x")


def test_event_to_dict_leaves_partial_and_raw_out(
    client: tuple[Client, FakeResponsesServer],
) -> None:
    c, _ = client
    for event in c.stream("m", Context(messages=[UserMessage("hi")])):
        data = event_to_dict(event)
        assert "partial" not in data
        assert "raw" not in data
        json.dumps(data)


def test_every_stream_event_with_fields_of_its_own_has_a_view() -> None:
    # the one table a new stream event type needs an entry in (docs/topics/design.rst)
    import attrs

    from openai_ws import events as events_module
    from openai_ws.web import EVENT_FIELDS

    common = {"raw", "_view", "content_index", "phase"}
    for name in events_module.__all__:
        cls = getattr(events_module, name)
        if not (isinstance(cls, type) and issubclass(cls, events_module.StreamEvent)):
            continue
        if cls is events_module.StreamEvent or not cls.type:
            continue
        own = {f.name for f in attrs.fields(cls)} - common
        if own:
            assert cls in EVENT_FIELDS, name
