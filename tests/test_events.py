"""MessageBuilder: server events to stream events, on every recorded stream and on edge cases."""

from __future__ import annotations

from typing import Any

import pytest

from openai_ws.events import (
    Done,
    Error,
    HostedToolEvent,
    MessageBuilder,
    Start,
    StreamEvent,
    TextDelta,
    TextEnd,
    TextStart,
    ThinkingDelta,
    ThinkingEnd,
    ThinkingStart,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
)
from openai_ws.exceptions import ConnectionClosed, PreviousResponseNotFound, RateLimitError
from openai_ws.messages import ServerItem, TextContent, ThinkingContent, ToolCall
from openai_ws.protocol import parse_server_event
from tests.conftest import all_recorded_streams

# the anonymised recording's text deltas do not add up to its final text
DELTAS_DIFFER = {"azure-gpt5-reasoning-multi-summary-with-encryption"}


def translate(stream: list[dict[str, Any]], model: str = "m") -> list[StreamEvent]:
    builder = MessageBuilder(model)
    out: list[StreamEvent] = [builder.start()]
    for data in stream:
        out.extend(builder.feed(parse_server_event(data)))
    return out


STREAMS = all_recorded_streams()


@pytest.mark.parametrize(("name", "stream"), STREAMS, ids=[n for n, _ in STREAMS])
def test_recorded_streams_translate_into_a_well_formed_stream(
    name: str, stream: list[dict[str, Any]]
) -> None:
    events = translate(stream)
    assert isinstance(events[0], Start)
    final = events[-1]
    assert isinstance(final, (Done, Error))
    assert [e for e in events if isinstance(e, (Done, Error))] == [final]
    # every piece: start, then deltas, then exactly one end
    opened: dict[int, str] = {}
    closed: set[int] = set()
    starts = {TextStart: "text", ThinkingStart: "thinking", ToolCallStart: "tool"}
    deltas = {TextDelta: "text", ThinkingDelta: "thinking", ToolCallDelta: "tool"}
    ends = {TextEnd: "text", ThinkingEnd: "thinking", ToolCallEnd: "tool"}
    hosted: set[int] = set()
    for event in events[1:-1]:
        index = event.content_index  # type: ignore[attr-defined]
        kind = type(event)
        if kind is HostedToolEvent:
            hosted.add(index)
            continue
        if kind in starts:
            assert index not in opened
            assert index > max(opened, default=-1)  # indices are handed out in order
            opened[index] = starts[kind]
        elif kind in deltas:
            assert opened[index] == deltas[kind]
            assert index not in closed
        else:
            assert opened[index] == ends[kind]
            assert index not in closed
            closed.add(index)
    assert closed == set(opened)
    if isinstance(final, Error):
        assert final.reason == "error"
        assert final.exception is not None
        return
    message = final.message
    assert final.reason == message.stop_reason
    # content indices match the final message's content; server items have no start/end
    servers = {i for i, part in enumerate(message.content) if isinstance(part, ServerItem)}
    assert hosted <= servers
    assert len(message.content) == len(opened) + len(servers)
    for index, kind in opened.items():
        expected = {"text": TextContent, "thinking": ThinkingContent, "tool": ToolCall}[kind]
        assert isinstance(message.content[index], expected)
    # what the caller saw adds up to the message
    if name not in DELTAS_DIFFER:
        seen = "".join(e.delta for e in events if isinstance(e, TextDelta) and not e.commentary)
        assert seen == message.text
    thought = "".join(e.delta for e in events if isinstance(e, ThinkingDelta))
    if thought:
        assert thought == message.thinking
    calls = [e.tool_call for e in events if isinstance(e, ToolCallEnd)]
    assert calls == message.tool_calls
    for event in events:
        if isinstance(event, TextEnd):
            assert event.content == message.content[event.content_index].text  # type: ignore[union-attr]


def test_tool_call_stream() -> None:
    (stream,) = [s for n, s in STREAMS if n == "issue-19493-gpt-5.1-tool-call"]
    events = translate(stream)
    start = next(e for e in events if isinstance(e, ToolCallStart))
    assert start.tool_call.name == "get_weather"
    assert start.tool_call.id.startswith("call_2FQdm3Br7Qb35YUBSkDR7kue|fc_")
    assert "".join(e.delta for e in events if isinstance(e, ToolCallDelta)) == '{"city":"Beijing"}'
    end = next(e for e in events if isinstance(e, ToolCallEnd))
    assert end.tool_call.arguments == {"city": "Beijing"}
    assert isinstance(events[-1], Done)
    assert events[-1].reason == "toolUse"


def test_commentary_is_marked() -> None:
    (stream,) = [s for n, s in STREAMS if n == "openai-phase.1"]
    events = translate(stream)
    texts = [e for e in events if isinstance(e, TextDelta)]
    assert [e.commentary for e in texts] == [True, True, False, False]
    assert isinstance(events[-1], Done)
    assert events[-1].message.text == "The capital of France is Paris."
    assert events[-1].message.commentary == "I'm going to search for that"


def test_thinking_summaries_are_separated_by_a_blank_line() -> None:
    (stream,) = [s for n, s in STREAMS if n.startswith("azure")]
    events = translate(stream)
    separators = [e for e in events if isinstance(e, ThinkingDelta) and e.delta == "\n\n"]
    assert len(separators) == 5  # six summary parts
    end = next(e for e in events if isinstance(e, ThinkingEnd))
    assert end.content.count("**Anonymized summary") == 6


def test_partial_snapshots_are_taken_when_the_event_is_made() -> None:
    (stream,) = [s for n, s in STREAMS if n == "openai-phase.1"]
    events = translate(stream)
    deltas = [e for e in events if isinstance(e, TextDelta)]
    # read after the whole stream was processed: each partial shows the text as it stood then
    assert [e.partial.content[e.content_index].text for e in deltas] == [  # type: ignore[union-attr]
        "I'm going to",
        "I'm going to search for that",
        "The capital",
        "The capital of France is Paris.",
    ]
    assert events[0].partial.content == []
    assert deltas[-1].partial.response_id == "resp_phase_001"


def test_failed_and_error_streams_end_with_error() -> None:
    (failed,) = [s for n, s in STREAMS if n == "openai-response-failed-only.1"]
    final = translate(failed)[-1]
    assert isinstance(final, Error)
    assert isinstance(final.exception, RateLimitError)
    assert final.error.stop_reason == "error"
    assert final.error.error_message is not None
    assert "Request too large" in final.error.error_message
    (errored,) = [s for n, s in STREAMS if n == "openai-error.1"]
    final = translate(errored)[-1]
    assert isinstance(final, Error)
    assert final.exception is not None
    assert final.exception.code == "insufficient_quota"  # type: ignore[attr-defined]


def text_turn(text_events: list[dict[str, Any]], ending: dict[str, Any]) -> list[dict[str, Any]]:
    head = [
        {"type": "response.created", "response": {"id": "r", "status": "in_progress"}},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"id": "m", "type": "message", "role": "assistant", "content": []},
        },
        {
            "type": "response.content_part.added",
            "item_id": "m",
            "output_index": 0,
            "content_index": 0,
            "part": {"type": "output_text", "text": ""},
        },
    ]
    return head + text_events + [ending]


def test_incomplete_is_done_with_length_or_error_for_other_reasons() -> None:
    delta = {
        "type": "response.output_text.delta",
        "item_id": "m",
        "output_index": 0,
        "content_index": 0,
        "delta": "cut",
    }
    output = [{"id": "m", "type": "message", "content": [{"type": "output_text", "text": "cut"}]}]

    def incomplete(reason: str) -> list[StreamEvent]:
        ending = {
            "type": "response.incomplete",
            "response": {
                "id": "r",
                "status": "incomplete",
                "incomplete_details": {"reason": reason},
                "output": output,
            },
        }
        return translate(text_turn([delta], ending))

    final = incomplete("max_output_tokens")
    assert isinstance(final[-1], Done)
    assert final[-1].reason == "length"
    assert isinstance(final[-2], TextEnd)  # the cut text part is closed before the end
    other = incomplete("content_filter")
    assert isinstance(other[-1], Error)
    assert other[-1].error.error_message == "response incomplete: content_filter"


def test_error_event_before_output() -> None:
    builder = MessageBuilder("m")
    out = builder.feed(
        parse_server_event(
            {
                "type": "error",
                "status": 400,
                "error": {"code": "previous_response_not_found", "message": "gone"},
            }
        )
    )
    (final,) = out
    assert isinstance(final, Error)
    assert isinstance(final.exception, PreviousResponseNotFound)
    assert builder.parts == []  # no piece of the answer started
    assert builder.feed(parse_server_event({"type": "response.created", "response": {}})) == []


def test_fail_keeps_the_content_so_far() -> None:
    builder = MessageBuilder("m")
    for data in text_turn(
        [
            {
                "type": "response.output_text.delta",
                "item_id": "m",
                "output_index": 0,
                "content_index": 0,
                "delta": "half",
            }
        ],
        {"type": "codex.rate_limits"},
    )[:-1]:
        builder.feed(parse_server_event(data))
    error = builder.fail(ConnectionClosed("dropped", code=1006))
    assert error.reason == "error"
    assert error.error.stop_reason == "error"
    assert error.error.content == [TextContent("half", item_id="m")]
    assert error.error.error_message == "dropped"
    aborted = MessageBuilder("m").fail(ConnectionClosed("closed"), aborted=True)
    assert (aborted.reason, aborted.error.stop_reason) == ("aborted", "aborted")


def test_deltas_without_starts_still_open_their_part() -> None:
    builder = MessageBuilder("m")
    out = builder.feed(
        parse_server_event(
            {
                "type": "response.output_text.delta",
                "item_id": "m",
                "output_index": 0,
                "content_index": 0,
                "delta": "x",
            }
        )
    )
    assert [type(e) for e in out] == [TextStart, TextDelta]
    out = builder.feed(
        parse_server_event(
            {
                "type": "response.function_call_arguments.delta",
                "item_id": "fc",
                "output_index": 1,
                "delta": "{",
            }
        )
    )
    assert [type(e) for e in out] == [ToolCallStart, ToolCallDelta]
    out = builder.feed(
        parse_server_event(
            {
                "type": "response.reasoning_summary_text.delta",
                "item_id": "rs",
                "output_index": 2,
                "summary_index": 0,
                "delta": "t",
            }
        )
    )
    assert [type(e) for e in out] == [ThinkingStart, ThinkingDelta]


def test_twenty_thousand_deltas() -> None:
    words = [f"w{i} " for i in range(20_000)]
    stream = text_turn(
        [
            {
                "type": "response.output_text.delta",
                "item_id": "m",
                "output_index": 0,
                "content_index": 0,
                "delta": w,
            }
            for w in words
        ],
        {
            "type": "response.completed",
            "response": {
                "id": "r",
                "status": "completed",
                "output": [
                    {
                        "id": "m",
                        "type": "message",
                        "content": [{"type": "output_text", "text": "".join(words)}],
                    }
                ],
            },
        },
    )
    events = translate(stream)
    assert isinstance(events[-1], Done)
    assert events[-1].message.text == "".join(words)
    middle = [e for e in events if isinstance(e, TextDelta)][10_000]
    assert middle.partial.text == "".join(words[:10_001])


def test_custom_calls_stream_their_input_and_partials_show_it() -> None:
    (stream,) = [s for n, s in STREAMS if n == "openai-custom-tool.1"]
    events = translate(stream)
    start = next(e for e in events if isinstance(e, ToolCallStart))
    assert (start.tool_call.kind, start.tool_call.name) == ("custom", "write_sql")
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [d.delta for d in deltas] == ["SELECT * ", "FROM users ", "WHERE age > 25"]
    (partial_call,) = deltas[1].partial.tool_calls
    assert (partial_call.kind, partial_call.input) == ("custom", "SELECT * FROM users ")
    end = next(e for e in events if isinstance(e, ToolCallEnd))
    assert end.tool_call.input == "SELECT * FROM users WHERE age > 25"
    assert end.tool_call.arguments == {}


def test_hosted_tool_events_point_at_their_server_item() -> None:
    (stream,) = [s for n, s in STREAMS if n == "openai-web-search-tool.1"]
    events = translate(stream)
    hosted = [e for e in events if isinstance(e, HostedToolEvent)]
    assert len(hosted) == 12
    assert [e.status for e in hosted[:3]] == ["in_progress", "searching", "completed"]
    first = hosted[0]
    assert first.item_type == "web_search_call"
    assert first.item["id"].startswith("ws_")
    part = first.partial.content[first.content_index]
    assert isinstance(part, ServerItem)
    assert part.id == first.item["id"]
    final = events[-1]
    assert isinstance(final, Done)
    assert final.message.content[first.content_index] == ServerItem(
        final.message.server_items[0].item
    )


def test_a_shell_call_is_a_tool_call_of_kind_shell() -> None:
    (stream,) = [s for n, s in STREAMS if n == "openai-shell-tool.1#0"]
    events = translate(stream)
    start = next(e for e in events if isinstance(e, ToolCallStart))
    assert (start.tool_call.kind, start.tool_call.name) == ("shell", "shell")
    end = next(e for e in events if isinstance(e, ToolCallEnd))
    assert end.tool_call.input["commands"] == ["ls -a ~/Desktop"]
    assert end.tool_call.item is not None
    assert end.tool_call.item["type"] == "shell_call"


def test_the_wrapper_streams_as_one_call_and_ends_expanded() -> None:
    (stream,) = [s for n, s in STREAMS if n == "issue-19067-parallel-tool-call-wrapper"]
    tools = [
        {"type": "function", "name": "weather"},
        {"type": "function", "name": "cityAttractions"},
    ]
    builder = MessageBuilder("m", tools=tools)
    events: list[StreamEvent] = []
    for data in stream:
        events.extend(builder.feed(parse_server_event(data)))
    assert next(e for e in events if isinstance(e, ToolCallEnd)).tool_call.name == "parallel"
    final = events[-1]
    assert isinstance(final, Done)
    assert [c.name for c in final.message.tool_calls] == ["weather", "cityAttractions"]


def test_call_deltas_for_an_output_index_that_holds_a_message_still_make_a_call() -> None:
    # found by the hostile-input property test: item types and events need not agree
    events = translate(
        [
            {"type": "response.output_item.added", "output_index": 0,
             "item": {"id": "m1", "type": "message"}},
            {"type": "response.function_call_arguments.delta", "output_index": 0,
             "item_id": "fc1", "delta": "{}"},
            {"type": "response.custom_tool_call_input.delta", "output_index": 1,
             "item_id": "ct1", "delta": "x"},
            {"type": "error", "code": "server_error", "message": "m"},
        ]
    )  # fmt: skip
    ends = [e.tool_call.kind for e in events if isinstance(e, ToolCallEnd)]
    assert ends == ["function", "custom"]
    assert isinstance(events[-1], Error)


def test_image_generation_progress_and_partial_images() -> None:
    item = {"id": "ig_1", "type": "image_generation_call", "status": "in_progress"}
    where = {"output_index": 0, "item_id": "ig_1"}
    events = translate(
        [
            {"type": "response.created", "response": {"id": "r", "status": "in_progress"}},
            {"type": "response.output_item.added", "output_index": 0, "item": item},
            {"type": "response.image_generation_call.generating", **where},
            {"type": "response.image_generation_call.partial_image", **where,
             "partial_image_index": 0, "partial_image_b64": "AAAA"},
            {"type": "response.output_item.done", "output_index": 0,
             "item": {**item, "status": "completed", "result": "BBBB"}},
            {"type": "response.completed", "response": {"id": "r", "status": "completed",
             "output": []}},
        ]
    )  # fmt: skip
    hosted = [e for e in events if isinstance(e, HostedToolEvent)]
    assert [e.status for e in hosted] == ["generating", "partial_image"]
    assert hosted[1].raw.partial_image_b64 == "AAAA"  # type: ignore[union-attr]
    final = events[-1]
    assert isinstance(final, Done)
    assert final.message.server_items[0].item["result"] == "BBBB"


# -- what the server sends must not reach the caller broken (issue 11, points 8 and 9) -----------


def raw_text_delta(delta_json: str, sequence: int) -> str:
    """A text delta frame whose ``delta`` is the JSON string body *delta_json* (escapes kept)."""
    return (
        '{"type":"response.output_text.delta","item_id":"m","output_index":0,'
        f'"content_index":0,"sequence_number":{sequence},"delta":"{delta_json}"}}'
    )


def numbered(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**event, "sequence_number": n} for n, event in enumerate(events)]


def test_a_surrogate_pair_split_across_deltas_is_joined_before_it_is_yielded() -> None:
    builder = MessageBuilder("m")
    head = numbered(text_turn([], {"type": "response.in_progress", "response": {"id": "r"}}))[:3]
    out: list[StreamEvent] = []
    for data in head:
        out += builder.feed(parse_server_event(data))
    first = builder.feed(parse_server_event(raw_text_delta(r"smile \ud83d", 3)))
    second = builder.feed(parse_server_event(raw_text_delta(r"\ude00!", 4)))
    deltas = [e.delta for e in first + second if isinstance(e, TextDelta)]
    assert deltas == ["smile ", "\U0001f600!"]
    for delta in deltas:
        delta.encode("utf-8")


def test_a_held_high_surrogate_without_partner_is_flushed_as_replacement_at_the_part_end() -> None:
    builder = MessageBuilder("m")
    stream = numbered(
        text_turn(
            [],
            {
                "type": "response.output_item.done",
                "output_index": 0,
                "item": {"id": "m", "type": "message", "role": "assistant", "content": []},
            },
        )
    )
    out: list[StreamEvent] = []
    for data in stream[:3]:
        out += builder.feed(parse_server_event(data))
    out += builder.feed(parse_server_event(raw_text_delta(r"end \ud83d", 3)))
    out += builder.feed(parse_server_event(stream[3] | {"sequence_number": 4}))
    deltas = [e.delta for e in out if isinstance(e, TextDelta)]
    assert deltas == ["end ", "\ufffd"]
    ends = [e for e in out if isinstance(e, TextEnd)]
    assert [e.content for e in ends] == ["end \ufffd"]


def test_a_split_pair_in_thinking_is_joined() -> None:
    builder = MessageBuilder("m")
    out: list[StreamEvent] = []
    for number, delta in enumerate([r"hm \ud83e", r"\udd14 ok"]):
        out += builder.feed(
            parse_server_event(
                '{"type":"response.reasoning_summary_text.delta","item_id":"rs",'
                f'"output_index":0,"summary_index":0,"sequence_number":{number},'
                f'"delta":"{delta}"}}'
            )
        )
    thinking = [e.delta for e in out if isinstance(e, ThinkingDelta)]
    assert "".join(thinking) == "hm \U0001f914 ok"
    assert all(not any("\ud800" <= c <= "\udfff" for c in d) for d in thinking)


def test_a_repeated_event_is_not_yielded_twice() -> None:
    delta = {
        "type": "response.output_text.delta",
        "item_id": "m",
        "output_index": 0,
        "content_index": 0,
    }
    completed = {
        "type": "response.completed",
        "response": {
            "id": "r",
            "status": "completed",
            "output": [
                {
                    "type": "message",
                    "id": "m",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "ab", "annotations": []}],
                }
            ],
        },
    }
    stream = numbered(text_turn([{**delta, "delta": "a"}, {**delta, "delta": "b"}], completed))
    stream.insert(5, dict(stream[3]))  # "a" again, after "b": same sequence_number 3
    stream.insert(4, dict(stream[3]))  # "a" again at once
    events = translate(stream)
    assert [e.delta for e in events if isinstance(e, TextDelta)] == ["a", "b"]
    final = events[-1]
    assert isinstance(final, Done)
    assert final.message.text == "ab"


def test_out_of_order_events_do_not_fail_the_turn_and_completed_has_the_final_word() -> None:
    delta = {
        "type": "response.output_text.delta",
        "item_id": "m",
        "output_index": 0,
        "content_index": 0,
    }
    completed = {
        "type": "response.completed",
        "response": {
            "id": "r",
            "status": "completed",
            "output": [
                {
                    "type": "message",
                    "id": "m",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "ab", "annotations": []}],
                }
            ],
        },
    }
    stream = numbered(text_turn([{**delta, "delta": "a"}, {**delta, "delta": "b"}], completed))
    stream[3], stream[4] = stream[4], stream[3]
    events = translate(stream)
    final = events[-1]
    assert isinstance(final, Done)
    assert final.message.text == "ab"
