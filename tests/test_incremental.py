"""The request of each turn is built and chained in O(new messages): the per-context memo of
:mod:`openai_ws.options` and the digest checkpoints of :class:`openai_ws.chain.InputItems`.

Every test compares against the pure, from-scratch functions (``prepare_history`` then
``convert_messages_to_input_items``, ``ItemDigest`` over the whole list), so that the memo can
only ever be a faster way to the same request."""

from __future__ import annotations

import copy
import gc
import itertools
import logging
import pickle
import random
from collections.abc import Iterator
from typing import Any

import pytest

import openai_ws.chain as chain_module
import openai_ws.convert as convert_module
from openai_ws import Client
from openai_ws.chain import InputItems, ItemDigest, fingerprint, plan_from_fingerprint
from openai_ws.convert import convert_messages_to_input_items
from openai_ws.history import prepare_history
from openai_ws.messages import (
    AssistantMessage,
    Context,
    Message,
    TextContent,
    ToolCall,
    ToolResultMessage,
    UserMessage,
)
from openai_ws.options import _MEMO, StreamOptions, build_request
from openai_ws.testing import FakeResponsesServer
from tests.conftest import KEY


def fresh(messages: list[Message]) -> list[dict[str, Any]]:
    return convert_messages_to_input_items(prepare_history(messages))


def built(context: Context, **options: Any) -> list[dict[str, Any]]:
    items = build_request("m", context, StreamOptions(**options))["input"]
    assert isinstance(items, list)
    return items


def assistant(*parts: Any, stop: str = "stop") -> AssistantMessage:
    return AssistantMessage(list(parts), stop_reason=stop)  # type: ignore[arg-type]


def call(n: int) -> ToolCall:
    return ToolCall(f"call_{n}|fc_{n}", "get_weather", {"city": f"c{n}"})


def result(n: int, text: str = "sunny") -> ToolResultMessage:
    return ToolResultMessage(f"call_{n}", "get_weather", text)


def test_a_random_conversation_edited_every_way_builds_what_a_fresh_build_does() -> None:
    rng = random.Random(13)
    context = Context(messages=[UserMessage("start")])
    calls = 0
    for step in range(400):
        messages = context.messages
        action = rng.randrange(12)
        if action <= 2:
            messages.append(UserMessage(f"u{step}"))
        elif action <= 4:
            calls += 1
            stop = rng.choice(["toolUse", "toolUse", "error", "aborted"])
            messages.append(assistant(TextContent(f"a{step}"), call(calls), stop=stop))
        elif action <= 6 and calls:
            messages.append(result(rng.randint(1, calls), f"r{step}"))
        elif action == 7:
            messages.append(result(calls + 1 + rng.randrange(3), "early or orphan"))
        elif action == 8 and len(messages) > 1:
            index = rng.randrange(len(messages))
            messages[index] = copy.copy(messages[index])  # equal, but another object
        elif action == 9 and len(messages) > 1:
            del messages[rng.randrange(len(messages))]
        elif action == 10:
            messages.insert(rng.randrange(len(messages) + 1), UserMessage(f"i{step}"))
        else:
            messages.append(assistant(TextContent(f"t{step}")))
        if rng.random() < 0.05:
            context.messages = list(messages)  # a new list with the same objects
        items = built(context)
        assert items == fresh(context.messages), step
        digest = ItemDigest().update(items)
        assert isinstance(items, InputItems)
        assert items.digest_upto(len(items)).hexdigest() == digest.hexdigest(), step


def test_pending_calls_get_synthetic_results_until_their_results_arrive() -> None:
    context = Context(
        messages=[UserMessage("weather?"), assistant(call(1), call(2), stop="toolUse")]
    )
    first = built(context)
    assert [i["type"] for i in first[-2:]] == ["function_call_output"] * 2
    assert all(i["output"].startswith("Error: ") for i in first[-2:])
    context.messages.append(result(2, "rain"))
    context.messages.append(UserMessage("and?"))
    items = built(context)
    assert items == fresh(context.messages)
    outputs = {i["call_id"]: i["output"] for i in items if i["type"] == "function_call_output"}
    assert outputs["call_2"] == "rain"
    assert outputs["call_1"].startswith("Error: ")  # settled before the user spoke again
    assert items[-1]["role"] == "user"


def test_a_result_dropped_as_an_orphan_is_kept_once_its_call_arrives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    context = Context(messages=[UserMessage("hi"), result(7, "early")])
    expected = fresh(context.messages)
    assert len(expected) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="openai_ws"):
        assert built(context) == expected
        assert built(context) == expected  # the memo: same list, same request
    # the warning is logged on every request, as the from-scratch hygiene does
    assert sum("dropped the result" in r.getMessage() for r in caplog.records) == 2
    context.messages.append(assistant(call(7), stop="toolUse"))
    items = built(context)
    assert items == fresh(context.messages)
    assert any(i.get("output") == "early" for i in items)


def test_a_replaced_message_is_seen_even_when_the_list_is_the_same() -> None:
    context = Context(messages=[UserMessage("one"), assistant(TextContent("two"))])
    built(context)
    context.messages[0] = UserMessage("changed")
    context.messages.append(UserMessage("three"))
    items = built(context)
    assert items[0]["content"] == [{"type": "input_text", "text": "changed"}]
    assert items == fresh(context.messages)


def test_errors_leave_the_memo_as_it_was() -> None:
    context = Context(messages=[UserMessage("one")])
    built(context)
    context.messages.append(assistant(ToolCall(" | ", "get_weather"), stop="toolUse"))
    with pytest.raises(ValueError, match="blank tool call id"):
        built(context)
    context.messages[-1] = UserMessage("two")
    assert built(context) == fresh(context.messages)


def test_a_hook_gets_items_of_its_own() -> None:
    context = Context(messages=[UserMessage("one"), assistant(TextContent("two"))])
    shared = built(context)
    hooked = built(context, on_payload=lambda body: None)
    assert hooked == shared
    assert all(a is not b for a, b in zip(hooked, shared, strict=True))
    hooked[0]["content"][0]["text"] = "changed by the hook"
    context.messages.append(UserMessage("three"))
    assert built(context) == fresh(context.messages)


def test_the_memo_goes_with_its_context() -> None:
    context = Context(messages=[UserMessage("one")])
    built(context)
    key = id(context)
    assert key in _MEMO._entries
    del context
    gc.collect()
    assert key not in _MEMO._entries


def test_input_items_hash_from_their_checkpoints_and_copy_as_plain_lists() -> None:
    items = [{"type": "message", "n": n} for n in range(9)]
    early = ItemDigest().update(items[:3])
    late = ItemDigest().update(items[:7])
    listed = InputItems(items, [late, early])
    for count in range(10):
        expected = ItemDigest().update(items[:count])
        got = listed.digest_upto(count)
        assert (got.hexdigest(), got.count) == (expected.hexdigest(), expected.count)
    assert (early.count, late.count) == (3, 7)  # the checkpoints are never changed
    assert [count for count in range(10) if listed.knows(count)] == [3, 7]
    listed[0] = {"other": True}
    listed.append({"type": "more"})  # the length changed: the checkpoints are not trusted
    assert listed.digest_upto(8).hexdigest() == ItemDigest().update(listed[:8]).hexdigest()
    assert not listed.knows(7)
    for clone in (copy.copy(listed), copy.deepcopy(listed), pickle.loads(pickle.dumps(listed))):
        assert type(clone) is list
        assert clone == listed


def test_plans_and_fingerprints_agree_with_and_without_checkpoints() -> None:
    request_items = [{"type": "message", "role": "user", "content": f"m{n}"} for n in range(6)]
    output = [{"type": "message", "role": "assistant", "content": [], "id": "msg_1"}]
    previous_request = {"model": "m", "input": request_items[:4]}
    fp = fingerprint(previous_request, output[:0])
    checkpointed = InputItems(request_items, [ItemDigest().update(request_items[:2])])
    # with the whole input's digest at hand (as build_request gives it), the plan copies it
    whole_known = InputItems(request_items, [ItemDigest().update(request_items)])
    for items in (checkpointed, whole_known, list(request_items)):
        plan, digest = plan_from_fingerprint(
            {"model": "m", "input": items}, fp, previous_response_id="resp_1"
        )
        assert plan.is_delta
        assert plan.payload["input"] == request_items[4:]
        assert digest is not None
        assert digest.hexdigest() == ItemDigest().update(request_items).hexdigest()
        whole = fingerprint({"model": "m", "input": items}, output)
        assert whole == fingerprint({"model": "m", "input": list(request_items)}, output)


@pytest.fixture
def client() -> Iterator[tuple[Client, FakeResponsesServer]]:
    from tests.conftest import FAST

    with FakeResponsesServer(latency=FAST, api_key=KEY) as server:
        with Client(api_key=KEY, base_url=server.http_base_url) as c:
            yield c, server


def test_a_long_conversation_hashes_and_converts_only_its_new_items(
    client: tuple[Client, FakeResponsesServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    c, server = client
    hashed = [0]
    converted = [0]
    canonical, assistant_items = chain_module._canonical, convert_module._assistant_items

    def counting_canonical(value: Any) -> bytes:
        hashed[0] += 1
        return canonical(value)

    def counting_items(message: AssistantMessage) -> list[dict[str, Any]]:
        converted[0] += 1
        return assistant_items(message)

    monkeypatch.setattr(chain_module, "_canonical", counting_canonical)
    monkeypatch.setattr(convert_module, "_assistant_items", counting_items)
    context = Context(messages=[])
    per_turn: list[tuple[int, int]] = []
    for turn in range(40):
        context.messages.append(UserMessage(f"short turn {turn}"))
        hashed[0] = converted[0] = 0
        message = c.stream("m", context, session_id="long", transport="websocket").result()
        per_turn.append((hashed[0], converted[0]))
        context.messages.append(message)
    requests = server.requests
    assert len(requests) == 40
    assert {r.transport for r in requests} == {"websocket"}
    for previous, request in itertools.pairwise(requests):
        # every later turn was a delta: the user's new message, chained on the last response
        assert request.body["previous_response_id"] is not None
        assert len(request.body["input"]) == 1
        assert request.duplicated_items == previous.duplicated_items == 0
    # from the third turn on, the work per turn does not grow with the conversation
    assert max(h for h, _ in per_turn[2:]) <= 8, per_turn
    assert max(n for _, n in per_turn[2:]) <= 2, per_turn
