"""Every recorded real stream (tests/fixtures/recorded, a copy of ../shared/fixtures/recorded)
gives the message a user expects: its text, its calls (custom ones with ``.input``), its hosted
items in order, and the two calls of the parallel wrapper recording. Sans-I/O first, then over
both transports from the emulator replaying the recorded frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openai_ws import Client, Context, Tool, UserMessage
from openai_ws.chain import fingerprint
from openai_ws.convert import convert_messages_to_input_items, output_items_to_input_items
from openai_ws.events import Done, Error, MessageBuilder, StreamEvent
from openai_ws.messages import AssistantMessage, ServerItem, TextContent, ThinkingContent, ToolCall
from openai_ws.protocol import parse_server_event
from openai_ws.sessions import Session, SessionConfig
from openai_ws.stores import GuardedStore, MemoryChainStore
from openai_ws.testing import FakeResponsesServer, LatencyModel, ReplayModel
from openai_ws.transports import SSETransport
from tests.conftest import KEY, RECORDED, all_recorded_streams, recorded_files

# the wrapper recording's response echoes no tools: these are the ones its request declared
WRAPPER_TOOLS = [
    {"type": "function", "name": "weather", "parameters": {}},
    {"type": "function", "name": "cityAttractions", "parameters": {}},
]

T, R, C, S = TextContent, ThinkingContent, ToolCall, ServerItem
WS = "web_search_call"

#: name -> (reason, content as (class, detail), text starts with, calls as (name, kind, payload))
EXPECTED: dict[str, tuple[str, list[tuple[type, Any]], str, list[tuple[str, str, Any]]]] = {
    "azure-gpt5-reasoning-multi-summary-with-encryption": (
        "stop",
        [(R, None), (T, None)],
        "Anonymized assistant response text.",
        [],
    ),
    "issue-19067-parallel-tool-call-wrapper": (
        "toolUse",
        [(C, "weather"), (C, "cityAttractions")],
        "",
        [
            ("weather", "function", {"location": "San Francisco"}),
            ("cityAttractions", "function", {"city": "Rome"}),
        ],
    ),
    "issue-19493-gpt-5.1-tool-call": (
        "toolUse",
        [(C, "get_weather")],
        "",
        [("get_weather", "function", {"city": "Beijing"})],
    ),
    "openai-compaction.1": ("stop", [(T, None), (S, "compaction")], "### Testing strategies", []),
    "openai-custom-tool.1": (
        "toolUse",
        [(C, "write_sql")],
        "",
        [("write_sql", "custom", "SELECT * FROM users WHERE age > 25")],
    ),
    "openai-error-null-code.1": ("error", [], "", []),
    "openai-error.1": ("error", [], "", []),
    "openai-issue-11239.1": (
        "toolUse",
        [(R, None), (C, "lookupCode")],
        "",
        [("lookupCode", "function", {})],
    ),
    "openai-phase.1": ("stop", [(T, None), (T, None)], "The capital of France is Paris.", []),
    "openai-reasoning-encrypted-content.1#0": (
        "toolUse",
        [(R, None), (C, "calculator")],
        "",
        [("calculator", "function", {"a": 12, "b": 7, "op": "add"})],
    ),
    "openai-reasoning-encrypted-content.1#1": (
        "toolUse",
        [(C, "calculator")],
        "",
        [("calculator", "function", {"a": 19, "b": 3, "op": "multiply"})],
    ),
    "openai-reasoning-encrypted-content.1#2": (
        "toolUse",
        [(C, "calculator")],
        "",
        [("calculator", "function", {"a": 57, "b": 10, "op": "multiply"})],
    ),
    "openai-reasoning-encrypted-content.1#3": (
        "stop",
        [(T, None)],
        "The final result is **570**.",
        [],
    ),
    "openai-response-failed-only.1": ("error", [], "", []),
    "openai-shell-tool.1#0": (
        "toolUse",
        [(C, "shell")],
        "",
        [
            (
                "shell",
                "shell",
                {"commands": ["ls -a ~/Desktop"], "max_output_length": 8912, "timeout_ms": None},
            )
        ],
    ),
    "openai-shell-tool.1#1": ("stop", [(T, None)], "Here are the files and folders", []),
    "openai-web-search-tool.1": (
        "stop",
        [
            (R, None),
            (S, WS),
            (R, None),
            (S, WS),
            (R, None),
            (S, WS),
            (R, None),
            (S, WS),
            (R, None),
            (T, None),
        ],
        "Here\u2019s what\u2019s notable in Berlin today",
        [],
    ),
}

STREAMS = all_recorded_streams()


def test_every_recording_has_an_expectation_and_the_copies_are_identical() -> None:
    assert sorted(EXPECTED) == sorted(name for name, _ in STREAMS)
    shared = Path("/work/shared/fixtures/recorded")
    if shared.is_dir():  # the shared copy exists in the project's workspace only
        for path in recorded_files():
            assert (shared / path.name).read_bytes() == path.read_bytes(), path.name


def final_of(stream: list[dict[str, Any]], tools: Any = None) -> StreamEvent:
    builder = MessageBuilder("m", tools=tools)
    events: list[StreamEvent] = []
    for data in stream:
        events.extend(builder.feed(parse_server_event(data)))
    return events[-1]


def _detail(part: object) -> str | None:
    if isinstance(part, ToolCall):
        return part.name
    return part.type if isinstance(part, ServerItem) else None


def check(name: str, final: StreamEvent) -> AssistantMessage:
    reason, content, text, calls = EXPECTED[name]
    if reason == "error":
        assert isinstance(final, Error)
        assert final.error.error_message
        return final.error
    assert isinstance(final, Done)
    message = final.message
    assert message.stop_reason == reason
    shape = [(type(p), _detail(p)) for p in message.content]
    assert shape == content
    assert message.text.startswith(text)
    got = [
        (c.name, c.kind, c.arguments if c.kind == "function" else c.input)
        for c in message.tool_calls
    ]
    assert got == calls
    return message


@pytest.mark.parametrize(("name", "stream"), STREAMS, ids=[n for n, _ in STREAMS])
def test_recording_gives_the_expected_message(name: str, stream: list[dict[str, Any]]) -> None:
    tools = WRAPPER_TOOLS if "wrapper" in name else None
    message = check(name, final_of(stream, tools))
    if message.stop_reason == "error":
        return
    # replaying the message gives exactly the planner's round trip of the output items
    # (the terminal response's output is authoritative; the streamed items when it lists none)
    output = stream[-1]["response"]["output"] or [
        e["item"] for e in stream if e["type"] == "response.output_item.done"
    ]
    items = output_items_to_input_items(output, tools=tools)
    assert convert_messages_to_input_items([message]) == items
    # hosted items come back verbatim
    for part in message.server_items:
        assert part.item in items


def test_the_wrapper_stays_one_call_when_its_recipients_are_not_declared() -> None:
    (stream,) = [s for n, s in STREAMS if "wrapper" in n]
    final = final_of(stream)  # the recording's response declares no tools
    assert isinstance(final, Done)
    assert [c.name for c in final.message.tool_calls] == ["parallel"]


@pytest.mark.parametrize("transport", ["websocket", "sse"])
@pytest.mark.parametrize("path", recorded_files(), ids=lambda p: p.name.replace(".chunks.txt", ""))
def test_recording_over_the_wire(path: Path, transport: str) -> None:
    """The same messages come out of client.stream() when the emulator replays the frames (the
    wrapper recording's request declares its two tools, as the real request did)."""
    name = path.name.replace(".chunks.txt", "")
    expected = [(n, s) for n, s in STREAMS if n == name or n.startswith(name + "#")]
    with (
        FakeResponsesServer(
            model=ReplayModel.from_recording(RECORDED / path.name),
            latency=LatencyModel.instant(),
        ) as server,
        Client(api_key="sk-recorded-1234", base_url=server.http_base_url, max_retries=0) as client,
    ):
        for stream_name, stream in expected:
            wrapper = "wrapper" in stream_name
            tools = [Tool(t["name"], "") for t in WRAPPER_TOOLS] if wrapper else []
            ctx = Context(messages=[UserMessage("replay")], tools=tools)
            final = list(client.stream("m", ctx, transport=transport))[-1]
            reason = EXPECTED[stream_name][0]
            if reason == "error":
                assert isinstance(final, Error)
                continue
            check(stream_name, final)  # the wrapper: expanded by the request's declared tools
            assert isinstance(final, Done)
            alone = final_of(stream, WRAPPER_TOOLS if wrapper else None)
            assert isinstance(alone, Done)
            assert final.message.content == alone.message.content


def _remembered(
    request: dict[str, Any], response: dict[str, Any], message: AssistantMessage
) -> Any:
    """The fingerprint a session stores for a turn that ended with *message*."""
    store = MemoryChainStore()
    config = SessionConfig(api_key=KEY, key_id="k", websocket_url="ws://127.0.0.1:9/v1/responses")
    http = SSETransport("http://127.0.0.1:9/v1", api_key=KEY)  # never used: nothing is sent
    session = Session("s", config, http=lambda: http, store=GuardedStore(store))
    session.remember(request, response, message)
    record = store.get("s")
    assert record is not None
    return record.fingerprint


@pytest.mark.parametrize(("name", "stream"), STREAMS, ids=[n for n, _ in STREAMS])
def test_a_turn_is_fingerprinted_from_its_message_as_from_its_output(
    name: str, stream: list[dict[str, Any]]
) -> None:
    """The session hashes the items of the turn's message instead of converting the output
    again: the stored fingerprint is the one the output gives, with the request's tools or none."""
    if isinstance(final_of(stream), Error):  # nothing to remember: the session never sees it
        assert EXPECTED[name][0] == "error"
        return
    output = stream[-1]["response"]["output"] or [
        e["item"] for e in stream if e["type"] == "response.output_item.done"
    ]
    response = {**stream[-1]["response"], "output": output}
    for declared in [None, WRAPPER_TOOLS] if "wrapper" in name else [None]:
        final = final_of(stream, declared)
        assert isinstance(final, Done)
        request: dict[str, Any] = {"model": "m", "input": [{"role": "user", "content": "hi"}]}
        if declared is not None:
            request["tools"] = declared
        assert _remembered(request, response, final.message) == fingerprint(request, output)


def test_a_message_built_with_other_tools_is_not_used_for_the_fingerprint() -> None:
    """A request without tools whose response echoes the wrapper's recipients: the message
    expands the wrapper (it used the echo), the chain's replay does not; the session must
    fingerprint what the chain replays."""
    (stream,) = [s for n, s in STREAMS if "wrapper" in n]
    response = {**stream[-1]["response"], "tools": WRAPPER_TOOLS}
    stream = [*stream[:-1], {**stream[-1], "response": response}]
    final = final_of(stream)  # no request tools: the builder uses the echoed ones
    assert isinstance(final, Done)
    assert [c.name for c in final.message.tool_calls] == ["weather", "cityAttractions"]
    request: dict[str, Any] = {"model": "m", "input": [{"role": "user", "content": "hi"}]}
    expected = fingerprint(request, response["output"])
    assert _remembered(request, response, final.message) == expected
