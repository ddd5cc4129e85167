"""Client.stream(): transport selection, fallback and retry rules, chaining, abandoning, events."""

from __future__ import annotations

import gc
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from openai_ws import (
    AssistantMessage,
    Client,
    Context,
    StreamOptions,
    Tool,
    ToolResultMessage,
    UserMessage,
)
from openai_ws.events import Done, Error, Start, StreamEvent, TextDelta, ToolCallEnd
from openai_ws.exceptions import (
    AuthenticationError,
    ConnectError,
    ConnectionClosed,
    ContextLengthExceeded,
    RateLimitError,
    StreamTimeout,
)
from openai_ws.testing import (
    BadFrame,
    CloseSocket,
    FakeResponsesServer,
    FunctionCall,
    Reasoning,
    RefuseUpgrade,
    Rejection,
    ScriptedModel,
    Stall,
    Text,
)
from tests.conftest import FAST, KEY, TIME_FACTOR, wait_for

WEATHER = Tool(
    "get_weather",
    "Current weather",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.fixture
def client(server: FakeResponsesServer) -> Iterator[Client]:
    with Client(api_key=KEY, base_url=server.http_base_url) as c:
        yield c


def ctx(text: str = "hi") -> Context:
    return Context(system_prompt="Be terse.", messages=[UserMessage(text)], tools=[WEATHER])


def run(client: Client, context: Context, **kwargs: Any) -> tuple[list[StreamEvent], Any]:
    stream = client.stream("m", context, **kwargs)
    events = list(stream)
    return events, stream


def agent_loop(
    client: Client,
    context: Context,
    *,
    session_id: str,
    transport: str | None = None,
    limit: int = 40,
) -> list[AssistantMessage]:
    messages = []
    for _ in range(limit):
        message = client.stream(
            "gpt-test", context, session_id=session_id, transport=transport
        ).result()
        messages.append(message)
        context.messages.append(message)
        if message.stop_reason != "toolUse":
            return messages
        for call in message.tool_calls:
            context.messages.append(
                ToolResultMessage(call.id, call.name, f"{call.arguments['city']}: " + "sunny " * 60)
            )
    raise AssertionError("the loop did not end")


# -- the stream itself --------------------------------------------------------------------------


def test_event_shape_and_result(server: FakeResponsesServer, client: Client) -> None:
    server.model = ScriptedModel(
        [[Reasoning(summary=("hm",)), Text("Checking.", phase="commentary"), Text("It is sunny.")]]
    )
    events, stream = run(client, ctx(), session_id="s")
    assert isinstance(events[0], Start)
    assert isinstance(events[-1], Done)
    assert [e.type for e in events if isinstance(e, (Done, Error))] == ["done"]
    assert [e.type for e in events[1:4]] == ["thinking_start", "thinking_delta", "thinking_end"]
    message = events[-1].message
    assert message.text == "It is sunny."
    assert message.commentary == "Checking."
    assert message.thinking == "hm"
    assert message.response_id == stream.response_id
    assert stream.transport == "websocket"
    assert stream.final is events[-1]
    assert stream.attempts == ["websocket: done"]
    assert all(e.raw is not None for e in events)
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert [d.commentary for d in deltas] == [True, False, False, False]
    assert deltas[-1].partial.text == "It is sunny."


def test_text_stream_and_result(server: FakeResponsesServer, client: Client) -> None:
    server.model = ScriptedModel(
        [[Text("Preamble. ", phase="commentary"), Text("The answer.")]], then="repeat"
    )
    assert "".join(client.stream("m", ctx()).text_stream) == "The answer."
    assert client.stream("m", ctx()).result().text == "The answer."


def test_result_raises_the_typed_error(server: FakeResponsesServer, client: Client) -> None:
    server.inject(
        Rejection(code="context_length_exceeded", message="too long", param="input"), times=None
    )
    events, _ = run(client, ctx())
    final = events[-1]
    assert isinstance(final, Error)
    assert final.reason == "error"
    assert isinstance(final.exception, ContextLengthExceeded)
    assert final.error.stop_reason == "error"
    assert (
        final.error.error_message == "[context_length_exceeded, status 400] too long (param: input)"
    )
    with pytest.raises(ContextLengthExceeded):
        client.stream("m", ctx()).result()


# -- chaining -----------------------------------------------------------------------------------


def test_twenty_tool_turns_send_deltas_and_match_http(
    server: FakeResponsesServer, client: Client
) -> None:
    script = [FunctionCall("get_weather", {"city": f"City{n}"}) for n in range(19)] + ["All done."]
    server.model = ScriptedModel(script)
    context = ctx("Weather everywhere?")
    over_ws = agent_loop(client, context, session_id="loop", transport="websocket")
    assert len(over_ws) == 20
    requests = server.requests
    assert len(requests) == 20
    first = requests[0].body
    assert "previous_response_id" not in first
    assert len(first["input"]) == 1
    for number, request in enumerate(requests[1:], start=1):
        body = request.body
        assert body["previous_response_id"] == over_ws[number - 1].response_id
        assert [item["type"] for item in body["input"]] == ["function_call_output"]
    assert server.stats.duplicate_history == 0
    assert server.stats.handshakes == 1
    assert all(r.connection == requests[0].connection for r in requests)
    # the same loop over HTTP gives the same conversation
    with (
        FakeResponsesServer(latency=FAST, model=ScriptedModel(script)) as other,
        Client(api_key=KEY, base_url=other.http_base_url) as http,
    ):
        over_sse = agent_loop(http, ctx("Weather everywhere?"), session_id="loop", transport="sse")
        assert all("previous_response_id" not in r.body for r in other.requests)  # store: false
        assert len(other.requests[-1].body["input"]) == 1 + 2 * 19

    def shape(message: AssistantMessage) -> tuple[Any, ...]:
        return (
            message.text,
            [(c.name, c.arguments) for c in message.tool_calls],
            message.stop_reason,
        )

    assert [shape(m) for m in over_ws] == [shape(m) for m in over_sse]
    assert over_ws[-1].text == "All done."


def test_store_true_chains_over_http(server: FakeResponsesServer, client: Client) -> None:
    context = ctx("Weather in Paris?")
    options = StreamOptions(store=True)
    message = client.stream("m", context, session_id="s", transport="sse", options=options).result()
    context.messages += [message, ToolResultMessage(message.tool_calls[0].id, "get_weather", "18C")]
    client.stream("m", context, session_id="s", transport="sse", options=options).result()
    assert server.requests[1].body["previous_response_id"] == message.response_id
    assert len(server.requests[1].body["input"]) == 1


def test_changed_history_sends_everything(server: FakeResponsesServer, client: Client) -> None:
    context = ctx("Hello")
    message = client.stream("m", context, session_id="s").result()
    context.messages += [message, UserMessage("more")]
    client.stream("m", context, session_id="s").result()
    assert "previous_response_id" in server.requests[1].body
    edited = Context(
        system_prompt="Be terse.",
        messages=[UserMessage("Different start"), UserMessage("more")],
        tools=[WEATHER],
    )
    client.stream("m", edited, session_id="s").result()
    assert "previous_response_id" not in server.requests[2].body
    changed = Context(system_prompt="Be verbose.", messages=edited.messages, tools=[WEATHER])
    client.stream("m", changed, session_id="s").result()
    assert "previous_response_id" not in server.requests[3].body


def test_after_an_error_the_next_turn_is_full(server: FakeResponsesServer, client: Client) -> None:
    context = ctx("Hello")
    message = client.stream("m", context, session_id="s").result()
    context.messages += [message, UserMessage("next")]
    server.inject(Rejection(code="invalid_value", message="no", param="input"))
    assert isinstance(list(client.stream("m", context, session_id="s"))[-1], Error)
    client.stream("m", context, session_id="s").result()
    assert "previous_response_id" not in server.requests[-1].body


def test_previous_response_not_found_resends_everything_once(
    server: FakeResponsesServer, client: Client
) -> None:
    context = ctx("Hello")
    message = client.stream("m", context, session_id="s").result()
    context.messages += [message, UserMessage("next")]
    server.inject(
        Rejection(code="previous_response_not_found", message="gone", param="previous_response_id"),
        match=lambda body: "previous_response_id" in body,
    )
    events, stream = run(client, context, session_id="s")
    assert isinstance(events[-1], Done)
    assert stream.attempts == ["websocket: PreviousResponseNotFound", "websocket: done"]
    delta, full = server.requests[-2].body, server.requests[-1].body
    assert "previous_response_id" in delta
    assert "previous_response_id" not in full
    assert len(full["input"]) == 3
    assert server.stats.handshakes == 1  # the same socket


def test_connection_limit_resends_everything_on_a_new_socket(
    server: FakeResponsesServer, client: Client
) -> None:
    context = ctx("Hello")
    message = client.stream("m", context, session_id="s").result()
    context.messages += [message, UserMessage("next")]
    server.inject(Rejection(code="websocket_connection_limit_reached", message="too old"))
    events, stream = run(client, context, session_id="s")
    assert isinstance(events[-1], Done)
    assert stream.attempts == ["websocket: ConnectionLimitReached", "websocket: done"]
    assert "previous_response_id" not in server.requests[-1].body
    assert server.requests[-1].connection != server.requests[0].connection


def test_rate_limit_waits_and_retries_once(server: FakeResponsesServer, client: Client) -> None:
    server.inject(
        Rejection(
            code="rate_limit_exceeded", message="slow", status=429, headers={"retry-after": "0.05"}
        )
    )
    events, stream = run(client, ctx())
    assert isinstance(events[-1], Done)
    assert stream.attempts == ["websocket: RateLimitError", "websocket: done"]
    server.inject(
        Rejection(
            code="rate_limit_exceeded", message="slow", status=429, headers={"retry-after": "60"}
        )
    )
    events, _ = run(client, ctx())
    assert isinstance(events[-1], Error)
    assert isinstance(events[-1].exception, RateLimitError)
    assert events[-1].exception.retry_after == 60


# -- fallback rules (auto) ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_a_handshake_refused_for_the_key_does_not_fall_back(
    server: FakeResponsesServer, client: Client, status: int
) -> None:
    server.inject(RefuseUpgrade(status, message="key revoked"))
    events, stream = run(client, ctx(), session_id="s")
    final = events[-1]
    assert isinstance(final, Error)
    assert isinstance(final.exception, AuthenticationError)
    assert final.exception.status_code == status
    assert final.exception.message == "key revoked"
    assert stream.attempts == ["websocket: AuthenticationError"]
    assert [r.transport for r in server.requests] == []  # HTTP never tried with that key


@pytest.mark.parametrize("status", [426, 500])
def test_refused_upgrade_falls_back_to_http_at_once(
    server: FakeResponsesServer, client: Client, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    server.inject(RefuseUpgrade(status))
    with caplog.at_level(logging.WARNING, logger="openai_ws"):
        events, stream = run(client, ctx(), session_id="s")
    assert isinstance(events[-1], Done)
    assert stream.transport == "sse"
    assert stream.attempts == ["websocket: ConnectError", "sse: done"]
    assert [r.transport for r in server.requests] == ["sse"]
    warnings = [r for r in caplog.records if "using HTTP streaming" in r.getMessage()]
    assert len(warnings) == 1
    assert KEY not in caplog.text


def test_unreachable_websocket_falls_back(server: FakeResponsesServer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Client(
        api_key=KEY,
        base_url=server.http_base_url,
        websocket_url=f"ws://127.0.0.1:{port}/v1/responses",
    ) as client:
        events, stream = run(client, ctx())
    assert isinstance(events[-1], Done)
    assert stream.transport == "sse"


def test_after_a_fallback_the_session_stays_on_http_for_the_cooldown(
    server: FakeResponsesServer, client: Client
) -> None:
    server.inject(RefuseUpgrade(426))
    for _ in range(3):
        _, stream = run(client, ctx(), session_id="s")
        assert stream.transport == "sse"
    assert len(server.handshakes) == 1  # no new handshake during the cool-down


def test_after_the_cooldown_the_socket_is_tried_again(server: FakeResponsesServer) -> None:
    with Client(api_key=KEY, base_url=server.http_base_url, fallback_cooldown=0) as client:
        server.inject(RefuseUpgrade(426))
        assert run(client, ctx(), session_id="s")[1].transport == "sse"
        assert run(client, ctx(), session_id="s")[1].transport == "websocket"
    assert [h.status for h in server.handshakes] == [426, 101]


def test_retryable_drop_before_output_retries_on_a_fresh_socket(
    server: FakeResponsesServer, client: Client
) -> None:
    server.inject(CloseSocket(after_events=1, code=1006))
    events, stream = run(client, ctx(), session_id="s")
    assert isinstance(events[-1], Done)
    assert stream.transport == "websocket"
    assert stream.attempts == ["websocket: ConnectionClosed", "websocket: done"]
    assert [e.type for e in events].count("start") == 1
    assert server.stats.handshakes == 2
    assert len({r.connection for r in server.requests}) == 2


def test_two_drops_before_output_fall_back_to_http(
    server: FakeResponsesServer, client: Client
) -> None:
    server.inject(CloseSocket(after_events=1, code=1011), times=2)
    events, stream = run(client, ctx(), session_id="s")
    assert isinstance(events[-1], Done)
    assert stream.attempts == [
        "websocket: ConnectionClosed",
        "websocket: ConnectionClosed",
        "sse: done",
    ]
    assert [r.transport for r in server.requests] == ["websocket", "websocket", "sse"]


def test_retryable_server_error_before_output_retries_then_falls_back(
    server: FakeResponsesServer, client: Client
) -> None:
    server.inject(
        Rejection(code="server_error", message="oops", status=500, type="server_error"),
        transport="websocket",
        times=2,
    )
    events, stream = run(client, ctx())
    assert isinstance(events[-1], Done)
    assert stream.attempts == ["websocket: APIError", "websocket: APIError", "sse: done"]


def test_protocol_error_before_output_goes_to_http(
    server: FakeResponsesServer, client: Client
) -> None:
    server.inject(BadFrame(after_events=1))
    events, stream = run(client, ctx())
    assert isinstance(events[-1], Done)
    assert stream.attempts == ["websocket: ProtocolError", "sse: done"]


def test_final_close_code_before_output_goes_to_http(
    server: FakeResponsesServer, client: Client
) -> None:
    server.inject(CloseSocket(after_events=1, code=1008))
    events, stream = run(client, ctx())
    assert isinstance(events[-1], Done)
    assert stream.attempts == ["websocket: ConnectionClosed", "sse: done"]


@pytest.mark.parametrize("after_events", [1, 6], ids=["before output", "after output"])
def test_after_a_final_close_in_websocket_mode_the_next_turn_opens_a_new_socket(
    server: FakeResponsesServer, client: Client, after_events: int
) -> None:
    server.model = ScriptedModel(["one two three four five six seven"], then="repeat")
    server.inject(CloseSocket(after_events=after_events, code=1008))
    events, stream = run(client, ctx(), session_id="s", transport="websocket")
    assert isinstance(events[-1], Error)
    assert stream.attempts == ["websocket: ConnectionClosed"]
    events, stream = run(client, ctx(), session_id="s", transport="websocket")
    assert isinstance(events[-1], Done), events[-1]
    assert stream.attempts == ["websocket: done"]
    assert server.stats.handshakes == 2


def test_a_silent_socket_goes_to_http_at_once_after_the_first_event_timeout(
    server: FakeResponsesServer,
) -> None:
    server.inject(Stall(30), transport="websocket", times=None)
    with Client(api_key=KEY, base_url=server.http_base_url, first_event_timeout=0.3) as client:
        started = time.monotonic()
        events, stream = run(client, ctx())
        elapsed = time.monotonic() - started
    assert isinstance(events[-1], Done)
    assert stream.attempts == ["websocket: StreamTimeout", "sse: done"]
    assert elapsed < 0.3 + 2 * TIME_FACTOR  # one silent attempt, not a second one


def test_in_websocket_mode_a_silent_socket_is_retried_once_within_the_budget(
    server: FakeResponsesServer,
) -> None:
    server.inject(Stall(30), transport="websocket", times=1)
    with Client(api_key=KEY, base_url=server.http_base_url, first_event_timeout=0.3) as client:
        events, stream = run(client, ctx(), transport="websocket")
    assert isinstance(events[-1], Done)
    assert stream.attempts == ["websocket: StreamTimeout", "websocket: done"]


@pytest.mark.parametrize("mode", ["auto", "websocket", "sse"])
def test_timeout_bounds_the_whole_turn_retries_and_fallback_included(
    server: FakeResponsesServer, mode: str
) -> None:
    server.inject(Stall(30), times=None)  # every attempt, on both transports, stalls
    timeout = 1.0
    with Client(api_key=KEY, base_url=server.http_base_url, timeout=timeout) as client:
        started = time.monotonic()
        events, stream = run(client, ctx(), transport=mode)
        elapsed = time.monotonic() - started
    final = events[-1]
    assert isinstance(final, Error)
    assert isinstance(final.exception, StreamTimeout)
    assert elapsed < timeout + 1.0 * TIME_FACTOR
    assert len(stream.attempts) >= 1


def test_after_output_nothing_is_replayed(server: FakeResponsesServer, client: Client) -> None:
    server.model = ScriptedModel(["one two three four five six seven"], then="repeat")
    server.inject(CloseSocket(after_events=6, code=1006))
    events, stream = run(client, ctx(), session_id="s")
    final = events[-1]
    assert isinstance(final, Error)
    assert isinstance(final.exception, ConnectionClosed)
    assert final.error.text == "one two"  # what had arrived
    seen = "".join(e.delta for e in events if isinstance(e, TextDelta))
    assert seen == "one two"
    assert len(server.requests) == 1
    assert stream.attempts == ["websocket: ConnectionClosed"]
    client.stream("m", ctx(), session_id="s").result()
    assert "previous_response_id" not in server.requests[-1].body


# -- forced transports --------------------------------------------------------------------------


def test_websocket_mode_surfaces_errors(server: FakeResponsesServer, client: Client) -> None:
    server.inject(RefuseUpgrade(426))
    events, stream = run(client, ctx(), transport="websocket")
    final = events[-1]
    assert isinstance(final, Error)
    assert isinstance(final.exception, ConnectError)
    assert final.exception.status_code == 426
    assert server.requests == []
    assert stream.attempts == ["websocket: ConnectError"]


def test_websocket_mode_retries_a_drop_once_but_never_falls_back(
    server: FakeResponsesServer, client: Client
) -> None:
    server.inject(CloseSocket(after_events=1, code=1006), times=2)
    events, stream = run(client, ctx(), transport="websocket")
    assert isinstance(events[-1], Error)
    assert stream.attempts == ["websocket: ConnectionClosed", "websocket: ConnectionClosed"]
    assert all(r.transport == "websocket" for r in server.requests)


def test_sse_mode_uses_http_only(server: FakeResponsesServer, client: Client) -> None:
    events, stream = run(client, ctx(), transport="sse", session_id="s")
    assert isinstance(events[-1], Done)
    assert stream.transport == "sse"
    assert stream.request_id is not None
    assert server.stats.handshakes == 0


def test_sse_mode_retries_a_cut_body_once(server: FakeResponsesServer, client: Client) -> None:
    server.inject(CloseSocket(after_events=1), transport="sse")
    events, stream = run(client, ctx(), transport="sse")
    assert isinstance(events[-1], Done)
    assert stream.attempts == ["sse: ConnectionClosed", "sse: done"]


# -- abandoning ---------------------------------------------------------------------------------


def long_text(server: FakeResponsesServer) -> None:
    server.model = ScriptedModel([" ".join(["word"] * 100)], then="repeat")


def test_break_abandons_and_the_next_turn_works(
    server: FakeResponsesServer, client: Client
) -> None:
    long_text(server)
    context = ctx()
    first = client.stream("m", context, session_id="s").result()
    context.messages += [first, UserMessage("again")]
    for event in client.stream("m", context, session_id="s"):
        if isinstance(event, TextDelta):
            break
    gc.collect()
    assert not client._sessions["s"].busy
    context.messages.append(UserMessage("and again"))
    client.stream("m", context, session_id="s").result()
    assert "previous_response_id" not in server.requests[-1].body


def test_exception_in_the_consumer_abandons_cleanly(
    server: FakeResponsesServer, client: Client
) -> None:
    long_text(server)
    stream = client.stream("m", ctx(), session_id="s")

    def read_until_interrupted() -> None:
        for event in stream:
            if isinstance(event, TextDelta):
                raise KeyboardInterrupt  # Ctrl-C in the middle of an answer

    with pytest.raises(KeyboardInterrupt):
        read_until_interrupted()
    stream.close()
    assert not client._sessions["s"].busy
    assert client.stream("m", ctx(), session_id="s").result().text


def test_dropping_the_stream_abandons_it(server: FakeResponsesServer, client: Client) -> None:
    long_text(server)
    stream = client.stream("m", ctx(), session_id="s")
    next(stream)
    next(stream)
    del stream
    gc.collect()
    assert not client._sessions["s"].busy
    assert client.stream("m", ctx(), session_id="s").result().text


def test_close_from_another_thread_aborts(server: FakeResponsesServer, client: Client) -> None:
    server.inject(Stall(30, after_events=5))
    stream = client.stream("m", ctx(), session_id="s")
    received: list[StreamEvent] = []
    consumer = threading.Thread(target=lambda: received.extend(stream))
    consumer.start()
    assert wait_for(lambda: received)
    stream.close()
    consumer.join(5)
    assert not consumer.is_alive()
    final = received[-1]
    assert isinstance(final, Error)
    assert final.reason == "aborted"
    assert final.error.stop_reason == "aborted"
    assert client.stream("m", ctx(), session_id="s").result().text


def test_sse_abandon_from_another_thread(server: FakeResponsesServer, client: Client) -> None:
    server.inject(Stall(30, after_events=3), transport="sse")
    stream = client.stream("m", ctx(), transport="sse")
    received: list[StreamEvent] = []
    consumer = threading.Thread(target=lambda: received.extend(stream))
    consumer.start()
    assert wait_for(lambda: received)
    time.sleep(0.05)  # let the consumer block on the stalled socket (it must wake either way)
    started = time.monotonic()
    stream.close()
    consumer.join(5)
    assert time.monotonic() - started < 2  # woken by the close, not by the 30 s stall
    assert not consumer.is_alive()
    assert isinstance(received[-1], Error)
    assert received[-1].reason == "aborted"


# -- options ------------------------------------------------------------------------------------

EVERY_OPTION = StreamOptions(
    temperature=0.2,
    top_p=0.8,
    max_output_tokens=400,
    tool_choice="auto",
    reasoning_effort="low",
    reasoning_summary="auto",
    text_verbosity="low",
    store=False,
    metadata={"k": "v"},
    include=["reasoning.encrypted_content"],
    instructions="Override.",
    extra_body={"truncation": "auto", "parallel_tool_calls": False},
    headers={"X-Option": "yes"},
    timeout=30,
)


def test_every_option_is_sent_identically_on_both_transports(
    server: FakeResponsesServer, client: Client
) -> None:
    client.stream("m", ctx(), transport="websocket", options=EVERY_OPTION).result()
    client.stream("m", ctx(), transport="sse", options=EVERY_OPTION).result()
    over_ws, over_sse = server.requests
    assert over_ws.transport == "websocket"
    assert over_sse.transport == "sse"
    transport_only = {"type", "stream"}
    ws_body = {k: v for k, v in over_ws.body.items() if k not in transport_only}
    sse_body = {k: v for k, v in over_sse.body.items() if k not in transport_only}
    assert ws_body == sse_body
    assert ws_body["temperature"] == 0.2
    assert ws_body["parallel_tool_calls"] is False
    assert ws_body["instructions"] == "Override."
    assert over_sse.headers["x-option"] == "yes"
    assert server.handshakes[-1].headers["x-option"] == "yes"


def test_on_payload_can_replace_the_payload(server: FakeResponsesServer, client: Client) -> None:
    seen: list[dict[str, Any]] = []

    def hook(payload: dict[str, Any]) -> dict[str, Any] | None:
        seen.append(payload)
        if len(seen) == 1:
            return {**payload, "metadata": {"via": "hook"}}
        return None

    options = StreamOptions(on_payload=hook)
    client.stream("m", ctx(), options=options).result()
    client.stream("m", ctx(), options=options, transport="sse").result()
    assert server.requests[0].body["metadata"] == {"via": "hook"}
    assert "metadata" not in server.requests[1].body
    assert seen[0]["input"] == seen[1]["input"]
    with pytest.raises(TypeError, match="on_payload"):
        client.stream("m", ctx(), options=StreamOptions(on_payload=lambda p: "nope")).result()  # type: ignore[arg-type,return-value]


def test_warm_up_option_chains_the_first_turn(server: FakeResponsesServer, client: Client) -> None:
    client.stream(
        "m", ctx("Weather in Oslo?"), session_id="s", options=StreamOptions(warm_up=True)
    ).result()
    warm, turn = server.requests
    assert warm.body["generate"] is False
    assert warm.body["input"] == []
    assert warm.body["tools"] == turn.body["tools"]
    assert turn.body["previous_response_id"] is not None
    assert len(turn.body["input"]) == 1


def test_client_warm_up(server: FakeResponsesServer, client: Client) -> None:
    context = ctx("Weather in Oslo?")
    warm_id = client.warm_up("m", context, session_id="s")
    message = client.stream("m", context, session_id="s").result()
    assert server.requests[-1].body["previous_response_id"] == warm_id
    assert message.tool_calls[0].arguments == {"city": "Oslo"}


def test_client_warm_up_after_a_final_close_opens_a_new_socket(
    server: FakeResponsesServer, client: Client
) -> None:
    server.inject(CloseSocket(after_events=1, code=1008))
    events, _ = run(client, ctx(), session_id="s", transport="websocket")
    assert isinstance(events[-1], Error)
    warm_id = client.warm_up("m", ctx(), session_id="s")
    assert warm_id.startswith("resp_")
    assert server.stats.handshakes == 2


def test_tool_call_events(server: FakeResponsesServer, client: Client) -> None:
    events, _ = run(client, ctx("Weather in Lima?"))
    end = next(e for e in events if isinstance(e, ToolCallEnd))
    assert end.tool_call.arguments == {"city": "Lima"}
    assert isinstance(events[-1], Done)
    assert events[-1].reason == "toolUse"
    args = "".join(e.delta for e in events if e.type == "toolcall_delta")  # type: ignore[attr-defined]
    assert json.loads(args) == {"city": "Lima"}
