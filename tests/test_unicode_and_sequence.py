"""End to end, through Client.stream against the emulator on both transports: what a server
sends can neither break the turn nor the next one (issue 11, points 8 and 9).

* A lone UTF-16 surrogate (escaped in JSON) in a reply reaches the caller as U+FFFD, so the next
  turn, which replays the reply (in full over HTTP, or on a new socket), can be encoded.
* A surrogate pair split across two deltas reaches the caller joined.
* Repeated and out-of-order ``sequence_number`` values do not fail the turn; a repeated event is
  not yielded twice; the final message is what ``response.completed`` says.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from openai_ws import AssistantMessage, Client, Context, UserMessage
from openai_ws.events import Done, StreamEvent, TextDelta, TextEnd
from openai_ws.testing import FakeResponsesServer, RawFrames, ScriptedModel, Text
from tests.conftest import KEY

TRANSPORTS = ["websocket", "sse"]


@pytest.fixture
def client(server: FakeResponsesServer) -> Iterator[Client]:
    with Client(api_key=KEY, base_url=server.http_base_url) as c:
        yield c


def has_surrogate(text: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in text)


def run(client: Client, context: Context, **kwargs: Any) -> list[StreamEvent]:
    return list(client.stream("m", context, **kwargs))


def final_message(events: list[StreamEvent]) -> AssistantMessage:
    final = events[-1]
    assert isinstance(final, Done), final
    return final.message


def message_turn(
    deltas: list[str], final_text: str, *, response_id: str, repeat: int | None = None
) -> RawFrames:
    """A reply as raw frames: each of *deltas* is the JSON body of a delta's string (escapes
    kept, so a lone surrogate can be sent); ``response.completed`` says *final_text*. With
    *repeat*, the delta at that position is sent twice (same ``sequence_number``)."""
    response = {"id": response_id, "object": "response", "status": "in_progress", "output": []}
    item = {"id": "msg_1", "type": "message", "role": "assistant", "status": "in_progress"}
    frames: list[dict[str, Any] | str] = [
        {"type": "response.created", "sequence_number": 0, "response": response},
        {
            "type": "response.output_item.added",
            "sequence_number": 1,
            "output_index": 0,
            "item": {**item, "content": []},
        },
        {
            "type": "response.content_part.added",
            "sequence_number": 2,
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": []},
        },
    ]
    number = 3
    for position, delta in enumerate(deltas):
        frame = (
            '{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,'
            f'"content_index":0,"sequence_number":{number},"delta":"{delta}"}}'
        )
        frames.append(frame)
        if position == repeat:
            frames.append(frame)
        number += 1
    part = {"type": "output_text", "text": final_text, "annotations": []}
    done = {**item, "status": "completed", "content": [part]}
    frames += [
        {
            "type": "response.output_item.done",
            "sequence_number": number,
            "output_index": 0,
            "item": done,
        },
        {
            "type": "response.completed",
            "sequence_number": number + 1,
            "response": {**response, "status": "completed", "output": [done]},
        },
    ]
    return RawFrames(frames)


# -- point 8: lone surrogates and split pairs ----------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_lone_surrogate_in_a_reply_does_not_break_the_next_turn(
    server: FakeResponsesServer, client: Client, transport: str
) -> None:
    # the emulator escapes non-ASCII (json.dumps' default), so the frames carry "\ud800"
    server.model = ScriptedModel([Text("bad \ud800 here"), Text("fine"), Text("fine again")])
    context = Context(system_prompt="Be terse.", messages=[UserMessage("hi")])
    events = run(client, context, session_id="s", transport=transport)
    message = final_message(events)
    assert message.text == "bad \ufffd here"
    deltas = "".join(e.delta for e in events if isinstance(e, TextDelta))
    assert not has_surrogate(deltas)
    assert not has_surrogate(json.dumps([e.content for e in events if isinstance(e, TextEnd)]))
    context.messages += [message, UserMessage("and now?")]

    # the next turn on the same session (a delta on the socket, a full request over HTTP)
    second = run(client, context, session_id="s", transport=transport)
    assert final_message(second).text == "fine"
    if transport == "sse":
        assert "previous_response_id" not in server.requests[1].body  # the reply was resent
        assert "bad \ufffd here" in json.dumps(server.requests[1].body, ensure_ascii=False)

    # and a full request that replays the reply, on a session of its own (a new socket)
    third = run(client, context, session_id="other", transport=transport)
    assert final_message(third).text == "fine again"
    assert "previous_response_id" not in server.requests[2].body
    assert "bad \ufffd here" in json.dumps(server.requests[2].body, ensure_ascii=False)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_surrogate_pair_split_across_deltas_reaches_the_caller_joined(
    server: FakeResponsesServer, client: Client, transport: str
) -> None:
    server.model = ScriptedModel(
        [
            message_turn(
                [r"smile \ud83d", r"\ude00 and \ud83d", r"\ude03"],
                "smile \U0001f600 and \U0001f603",
                response_id="resp_split",
            ),
            Text("fine"),
        ]
    )
    context = Context(system_prompt="Be terse.", messages=[UserMessage("hi")])
    events = run(client, context, session_id="s", transport=transport)
    deltas = [e.delta for e in events if isinstance(e, TextDelta)]
    assert deltas == ["smile ", "\U0001f600 and ", "\U0001f603"]
    message = final_message(events)
    assert message.text == "smile \U0001f600 and \U0001f603"
    context.messages += [message, UserMessage("more")]
    assert final_message(run(client, context, session_id="s2", transport=transport)).text == (
        "fine"
    )


# -- point 9: sequence numbers -------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_repeated_event_is_yielded_once(
    server: FakeResponsesServer, client: Client, transport: str
) -> None:
    server.model = ScriptedModel(
        [message_turn(["Hel", "lo", "!"], "Hello!", response_id="resp_rep", repeat=1)]
    )
    context = Context(system_prompt="Be terse.", messages=[UserMessage("hi")])
    events = run(client, context, transport=transport)
    assert [e.delta for e in events if isinstance(e, TextDelta)] == ["Hel", "lo", "!"]
    assert final_message(events).text == "Hello!"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_out_of_order_sequence_numbers_do_not_fail_the_turn(
    server: FakeResponsesServer, client: Client, transport: str
) -> None:
    turn = message_turn(["one ", "two ", "three"], "one two three", response_id="resp_ooo")
    frames = list(turn.frames)
    frames[3], frames[4] = frames[4], frames[3]  # "two " (sequence 4) before "one " (3)
    server.model = ScriptedModel([RawFrames(frames)])
    context = Context(system_prompt="Be terse.", messages=[UserMessage("hi")])
    stream = client.stream("m", context, transport=transport)
    events = list(stream)
    assert [e.delta for e in events if isinstance(e, TextDelta)] == ["two ", "one ", "three"]
    assert final_message(events).text == "one two three"  # what response.completed says
    assert stream.transport == transport
    assert len(server.requests) == 1  # not retried, not fallen back
