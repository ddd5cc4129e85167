"""Hostile input: property tests of the SSE decoder, the event parser, the accumulator and the
stream translator. Whatever comes in, only ProtocolError may come out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openai_ws.events import Done, Error, MessageBuilder
from openai_ws.exceptions import ProtocolError
from openai_ws.protocol import ResponseAccumulator, event_types, parse_server_event
from openai_ws.sse import SSEDecoder
from tests.conftest import all_recorded_streams

# the number of examples comes from the profile tests/conftest.py loads (300; more with --soak)
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def decode_all(chunks: list[bytes]) -> tuple[list[Any], bool]:
    decoder = SSEDecoder()
    out = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    return out, decoder.finish()


@SETTINGS
@given(st.binary(max_size=400), st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_sse_decoder_gives_the_same_events_however_the_bytes_are_cut(
    body: bytes, cuts: list[int]
) -> None:
    whole = decode_all([body])
    points = sorted({c % (len(body) + 1) for c in cuts})
    chunks = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    assert decode_all(chunks) == whole
    assert decode_all([body[i : i + 1] for i in range(len(body))]) == whole


sse_lines = st.lists(
    st.sampled_from(
        [
            b"data: ",
            b"data:",
            b"event: x",
            b"id: 1",
            b"retry: 5",
            b": c",
            b"",
            b'data: {"a":1}',
            b"\xe2\x80\xa8",
            b"\xff",
        ]
    )
    | st.binary(max_size=10),
    max_size=30,
)


@SETTINGS
@given(sse_lines, st.sampled_from([b"\n", b"\r", b"\r\n"]), st.integers(min_value=1, max_value=7))
def test_sse_decoder_on_event_shaped_input(lines: list[bytes], eol: bytes, step: int) -> None:
    body = eol.join(lines)
    whole = decode_all([body])
    assert decode_all([body[i : i + step] for i in range(0, len(body), step)]) == whole
    for message in whole[0]:
        assert isinstance(message.data, str)


@SETTINGS
@given(st.binary(max_size=200))
def test_parse_server_event_on_any_bytes(data: bytes) -> None:
    try:
        event = parse_server_event(data)
    except ProtocolError:
        return
    assert isinstance(event.type, str)


@SETTINGS
@given(json_values)
def test_parse_server_event_on_any_json(value: Any) -> None:
    try:
        event = parse_server_event(json.dumps(value))
    except ProtocolError:
        return
    assert isinstance(value, dict)
    assert event.raw == value


@SETTINGS
@given(
    st.sampled_from(sorted(event_types())),
    st.dictionaries(
        st.sampled_from(
            [
                "delta",
                "text",
                "item",
                "part",
                "response",
                "output_index",
                "content_index",
                "summary_index",
                "item_id",
                "arguments",
                "code",
                "message",
                "error",
                "status",
                "sequence_number",
                "annotation",
                "annotation_index",
                "command",
                "command_index",
                "output",
                "refusal",
                "input",
                "name",
            ]
        ),
        json_values,
        max_size=6,
    ),
)
def test_parse_every_known_type_with_junk_fields(event_type: str, fields: dict[str, Any]) -> None:
    try:
        event = parse_server_event({**fields, "type": event_type})
    except ProtocolError:
        return
    assert event.type == event_type


# -- the accumulator and the translator on nonsense sequences -----------------------------------

indices = st.integers(min_value=0, max_value=3)
ids = st.sampled_from(["m1", "m2", "fc1", "rs1", ""])
deltas = st.text(max_size=30) | st.just("x" * 100_000)  # huge deltas too

event_strategy = st.one_of(
    st.builds(
        lambda i, item_id, kind: {
            "type": "response.output_item.added",
            "output_index": i,
            "item": {"id": item_id, "type": kind},
        },
        indices,
        ids,
        st.sampled_from(["message", "function_call", "reasoning", "web_search_call"]),
    ),
    st.builds(
        lambda i, item: {"type": "response.output_item.done", "output_index": i, "item": item},
        indices,
        st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    ),
    st.builds(
        lambda i, c, item_id, d: {
            "type": "response.output_text.delta",
            "output_index": i,
            "content_index": c,
            "item_id": item_id,
            "delta": d,
        },
        indices,
        indices,
        ids,
        deltas,
    ),
    st.builds(
        lambda i, c, item_id, t: {
            "type": "response.output_text.done",
            "output_index": i,
            "content_index": c,
            "item_id": item_id,
            "text": t,
        },
        indices,
        indices,
        ids,
        st.text(max_size=10),
    ),
    st.builds(
        lambda i, c, part: {
            "type": "response.content_part.added",
            "output_index": i,
            "content_index": c,
            "item_id": "m1",
            "part": part,
        },
        indices,
        indices,
        st.dictionaries(st.text(max_size=5), json_values, max_size=2),
    ),
    st.builds(
        lambda i, c: {
            "type": "response.content_part.done",
            "output_index": i,
            "content_index": c,
            "item_id": "m1",
            "part": {"type": "output_text", "text": "t"},
        },
        indices,
        indices,
    ),
    st.builds(
        lambda i, d: {
            "type": "response.function_call_arguments.delta",
            "output_index": i,
            "item_id": "fc1",
            "delta": d,
        },
        indices,
        deltas,
    ),
    st.builds(
        lambda i, a: {
            "type": "response.function_call_arguments.done",
            "output_index": i,
            "item_id": "fc1",
            "arguments": a,
        },
        indices,
        st.text(max_size=10),
    ),
    st.builds(
        lambda i, s, d: {
            "type": "response.reasoning_summary_text.delta",
            "output_index": i,
            "summary_index": s,
            "item_id": "rs1",
            "delta": d,
        },
        indices,
        indices,
        deltas,
    ),
    st.builds(
        lambda i, s: {
            "type": "response.reasoning_summary_part.added",
            "output_index": i,
            "summary_index": s,
            "item_id": "rs1",
            "part": {},
        },
        indices,
        indices,
    ),
    st.builds(
        lambda i, c, d: {
            "type": "response.refusal.delta",
            "output_index": i,
            "content_index": c,
            "item_id": "m1",
            "delta": d,
        },
        indices,
        indices,
        deltas,
    ),
    st.builds(
        lambda i, a: {
            "type": "response.output_text.annotation.added",
            "output_index": i,
            "content_index": 0,
            "item_id": "m1",
            "annotation_index": a,
            "annotation": {},
        },
        indices,
        st.integers(min_value=-2, max_value=4),
    ),
    st.builds(
        lambda status, output: {
            "type": "response.completed",
            "response": {"id": "r", "status": status, "output": output},
        },
        st.sampled_from(["completed", "failed", "incomplete", "cancelled", "weird"]),
        st.lists(st.dictionaries(st.text(max_size=5), json_values, max_size=3), max_size=2),
    ),
    st.builds(
        lambda code: {"type": "error", "code": code, "message": "m"},
        st.sampled_from(["server_error", None, "previous_response_not_found"]),
    ),
    st.just({"type": "response.created", "response": {"id": "r", "status": "in_progress"}}),
    st.builds(lambda t: {"type": t}, st.sampled_from(["codex.rate_limits", "response.mystery"])),
)


def with_sequence(events: list[dict[str, Any]], numbers: list[int]) -> list[dict[str, Any]]:
    out = []
    for event, number in zip(events, numbers, strict=False):
        out.append({**event, "sequence_number": number} if number >= 0 else event)
    return out + events[len(numbers) :]


@SETTINGS
@given(
    st.lists(event_strategy, max_size=25),
    st.lists(st.integers(min_value=-1, max_value=30), max_size=25),
)
def test_accumulator_takes_any_sequence(events: list[dict[str, Any]], numbers: list[int]) -> None:
    accumulator = ResponseAccumulator()
    for data in with_sequence(events, numbers):
        try:
            accumulator.feed(parse_server_event(data))
        except ProtocolError:
            break  # a sequence number going backwards: refused, as documented
    json.dumps(accumulator.output)
    json.dumps(accumulator.response)


@SETTINGS
@given(st.lists(event_strategy, max_size=25))
def test_translator_takes_any_sequence_and_ends_once(events: list[dict[str, Any]]) -> None:
    builder = MessageBuilder("m")
    finals = []
    for data in events:
        for event in builder.feed(parse_server_event(data)):
            if isinstance(event, (Done, Error)):
                finals.append(event)
    assert len(finals) <= 1
    message = builder.partial()
    assert message.stop_reason == "stop"
    if finals and isinstance(finals[0], Done):
        assert finals[0].message.stop_reason in ("stop", "length", "toolUse")


# -- recorded streams, damaged the ways a network or a server can damage them -------------------

RECORDED_STREAMS = all_recorded_streams()
PART_ENDS = (
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.function_call_arguments.done",
    "response.reasoning_summary_text.done",
    "response.reasoning_summary_part.done",
    "response.refusal.done",
)


def final_message(events: list[dict[str, Any]]) -> Any:
    builder = MessageBuilder("m")
    last = None
    for data in events:
        for event in builder.feed(parse_server_event(data)):
            last = event
    assert isinstance(last, (Done, Error)), "every recorded stream ends"
    return last.message if isinstance(last, Done) else last.error


@SETTINGS
@given(st.sampled_from(RECORDED_STREAMS), st.data())
def test_recorded_streams_with_repeated_events_end_the_same(
    named: Any, data: st.DataObject
) -> None:
    """A repeated event (the same sequence_number again, as a retransmitting proxy would send)
    changes nothing."""
    _, stream = named
    repeat = data.draw(st.sets(st.integers(min_value=0, max_value=len(stream) - 1)))
    damaged = []
    for index, event in enumerate(stream):
        damaged.append(event)
        if index in repeat and "sequence_number" in event:
            damaged.append(event)
    assert final_message(damaged) == final_message(stream)


@pytest.mark.parametrize("named", RECORDED_STREAMS, ids=[name for name, _ in RECORDED_STREAMS])
def test_recorded_streams_without_their_done_events_end_the_same(named: Any) -> None:
    """The part and item ``.done`` events are summaries: without them the deltas and the
    terminal response carry the same answer."""
    _, stream = named
    damaged = [event for event in stream if event["type"] not in PART_ENDS]
    assert final_message(damaged) == final_message(stream)


@SETTINGS
@given(st.sampled_from(RECORDED_STREAMS), st.randoms(use_true_random=False))
def test_recorded_streams_in_any_order_give_a_protocol_error_or_one_ending(
    named: Any, rng: Any
) -> None:
    _, stream = named
    shuffled = list(stream)
    rng.shuffle(shuffled)
    builder = MessageBuilder("m")
    finals = 0
    try:
        for data in shuffled:
            finals += sum(
                isinstance(e, (Done, Error)) for e in builder.feed(parse_server_event(data))
            )
    except ProtocolError:
        return  # sequence numbers going backwards: refused, with the protocol's own error
    assert finals <= 1
