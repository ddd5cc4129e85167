"""Scale-out end to end: chains continued across processes through a real Redis, stale
fingerprints, TTL expiry, Redis dying between turns, and the socket budget (max_sockets).

Every test runs the emulator on loopback and, where it needs one, a redis-server of its own
(see :class:`tests.test_stores.RedisServer`; a missing binary fails the test)."""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from openai_ws import (
    AssistantMessage,
    AuthenticationError,
    Client,
    ConcurrencyError,
    Context,
    StreamOptions,
    Tool,
    ToolResultMessage,
    UserMessage,
)
from openai_ws.events import Done, Error, Start
from openai_ws.stores import RedisChainStore
from openai_ws.testing import FakeResponsesServer, RecordedRequest
from tests.conftest import TIME_FACTOR, wait_for
from tests.test_stores import RedisServer

KEY = "sk-test-scaleout"
MODEL = "gpt-test"
WEATHER = Tool(
    "get_weather",
    "Current weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
QUESTIONS = [
    "What's the weather in Paris?",
    "And in Rome?",
    "Oslo?",
    "Tokyo?",
    "Lima?",
    "Bern?",
    "Fine.",
]


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def emulator() -> Iterator[FakeResponsesServer]:
    with FakeResponsesServer(api_key=KEY) as server:
        yield server


def context(messages: list[Any]) -> Context:
    return Context(system_prompt="You are terse.", messages=list(messages), tools=[WEATHER])


def follow_up(messages: list[Any], answer: AssistantMessage, questions: list[str]) -> None:
    """The next turn's input: the tool results, or the next question."""
    messages.append(answer)
    if answer.stop_reason == "toolUse":
        for call in answer.tool_calls:
            messages.append(ToolResultMessage(call.id, call.name, "18C, sunny"))
    else:
        messages.append(UserMessage(questions.pop(0)))


def responses(server: FakeResponsesServer) -> list[RecordedRequest]:
    return [r for r in server.requests if isinstance(r.body, dict) and "input" in r.body]


# -- two processes continue each other's chains ------------------------------------------------

_WORKER_CLIENT: Client | None = None


def _worker_turn(
    redis_url: str, base_url: str, session_id: str, messages: list[Any], store: bool
) -> tuple[AssistantMessage | None, str | None]:
    """One turn in a spawned worker process, on that process's one Client (kept between calls,
    as a web worker keeps its client): the answer, or the error message."""
    global _WORKER_CLIENT
    if _WORKER_CLIENT is None:
        _WORKER_CLIENT = Client(
            api_key=KEY,
            base_url=base_url,
            transport="websocket",
            chain_store=RedisChainStore(redis_url),
        )
    turn = _WORKER_CLIENT.stream(
        MODEL, context(messages), session_id=session_id, options=StreamOptions(store=store)
    )
    for event in turn:
        if isinstance(event, Done):
            return event.message, None
        if isinstance(event, Error):
            return None, event.error.error_message
    return None, "no final event"


@pytest.mark.parametrize("store", [True, False], ids=["store-true", "store-false"])
def test_two_spawned_processes_continue_each_others_chains(
    redis_server: RedisServer, emulator: FakeResponsesServer, store: bool
) -> None:
    spawn = multiprocessing.get_context("spawn")
    a = concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=spawn)
    b = concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=spawn)
    questions = list(QUESTIONS)
    messages: list[Any] = [UserMessage(questions.pop(0))]
    ids: list[str | None] = []
    try:
        for number in range(6):
            worker = a if number % 2 == 0 else b  # A, B, A, B...: every turn changes process
            answer, error = worker.submit(
                _worker_turn, redis_server.url, emulator.http_base_url, "chat-x", messages, store
            ).result(timeout=120 * TIME_FACTOR)
            assert error is None, f"turn {number + 1}: {error}"
            assert answer is not None
            ids.append(answer.response_id)
            follow_up(messages, answer, questions)
    finally:
        a.shutdown()
        b.shutdown()
    sent = responses(emulator)
    assert len(sent) == 6  # nothing was retried: no previous_response_not_found
    assert all(r.transport == "websocket" for r in sent)
    previous = [r.body.get("previous_response_id") for r in sent]
    assert previous[0] is None
    if store:
        # each turn chains from the one before, made by the other process, with only the new
        # input: the server stored it, and Redis told this process its id and fingerprint
        assert previous[1:] == ids[:-1]
        for request in sent[1:]:
            assert len(request.body["input"]) <= 2, request.body["input"]
        assert sum(r.duplicated_items for r in sent) == 0
    else:
        # store false: the response lives in one socket; the other process resends in full the
        # first time, then each process chains from the last response on its own socket
        assert previous[1] is None
        assert len(sent[1].body["input"]) == len(sent[0].body["input"]) + 2
        assert previous[2:] == ids[:-2]
        for request in sent:
            assert request.body["store"] is False


# -- in one process, two clients stand for two workers ---------------------------------------------


def worker(server: FakeResponsesServer, redis_url: str, **store: Any) -> Client:
    return Client(
        api_key=KEY,
        base_url=server.http_base_url,
        transport="websocket",
        chain_store=RedisChainStore(redis_url, **store),
    )


def ask(client: Client, messages: list[Any], *, session_id: str = "chat", **options: Any) -> Any:
    turn = client.stream(
        MODEL,
        context(messages),
        session_id=session_id,
        options=StreamOptions(**{"store": True, **options}),
    )
    return turn.result()


def test_a_stale_fingerprint_means_a_full_request(
    redis_server: RedisServer, emulator: FakeResponsesServer
) -> None:
    with worker(emulator, redis_server.url) as a, worker(emulator, redis_server.url) as b:
        messages: list[Any] = [UserMessage("What's the weather in Paris?")]
        first = ask(a, messages)
        # another worker gets a history that does not continue the stored turn (edited)
        edited: list[Any] = [UserMessage("What's the weather in Rome?"), first, UserMessage("Hm?")]
        second = ask(b, edited)
        # and a setting that changed (instructions) is a mismatch too
        third = ask(a, [*edited, second, UserMessage("Oslo?")], instructions="Be verbose.")
        # then a true continuation of what b stored chains again, from a
        fourth = ask(
            a,
            [*edited, second, UserMessage("Oslo?"), third, UserMessage("Thanks")],
            instructions="Be verbose.",
        )
    sent = responses(emulator)
    assert [r.body.get("previous_response_id") for r in sent] == [
        None,
        None,
        None,
        third.response_id,
    ]
    assert len(sent[3].body["input"]) == 1
    assert fourth.stop_reason == "stop"


def test_an_expired_chain_means_a_full_request(
    redis_server: RedisServer, emulator: FakeResponsesServer
) -> None:
    raw = redis_server.client()
    try:
        with (
            worker(emulator, redis_server.url, ttl=1) as a,
            worker(emulator, redis_server.url, ttl=1) as b,
        ):
            messages: list[Any] = [UserMessage("Hello there")]
            first = ask(a, messages)
            second = ask(b, [*messages, first, UserMessage("Again")])  # before expiry: chained
            assert raw.exists("openai-ws:chain:chat")
            assert wait_for(lambda: not raw.exists("openai-ws:chain:chat"), 10)
            # a third worker, without a socket for this chat, finds nothing: the whole story
            with worker(emulator, redis_server.url, ttl=1) as c:
                ask(c, [*messages, first, UserMessage("Again"), second, UserMessage("Late")])
    finally:
        raw.close()
    sent = responses(emulator)
    assert [r.body.get("previous_response_id") for r in sent] == [None, first.response_id, None]


def test_redis_stopped_between_turns(
    redis_server: RedisServer, emulator: FakeResponsesServer, caplog: pytest.LogCaptureFixture
) -> None:
    with worker(emulator, redis_server.url) as a, worker(emulator, redis_server.url) as b:
        messages: list[Any] = [UserMessage("Hello there")]
        first = ask(a, messages)
        redis_server.stop()
        messages += [first, UserMessage("Still there?")]
        with caplog.at_level(logging.WARNING, logger="openai_ws"):
            second = ask(b, messages)  # no socket, no store: the whole conversation
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert "chain store" in warnings[0].getMessage()
        caplog.clear()
        messages += [second, UserMessage("And now?")]
        with caplog.at_level(logging.WARNING, logger="openai_ws"):
            third = ask(b, messages)  # b's own socket remembers its last response
            fourth = ask(b, [*messages, third, UserMessage("More")])
        assert caplog.records == []  # the same outage: no new warning, and no wait on Redis
    sent = responses(emulator)
    assert [r.body.get("previous_response_id") for r in sent] == [
        None,
        None,
        second.response_id,
        third.response_id,
    ]
    assert fourth.stop_reason == "stop"


# -- the socket budget ---------------------------------------------------------------------


def open_sockets(client: Client) -> set[str]:
    return {key for key, s in client._sessions.items() if s.current_connection() is not None}


def test_the_socket_budget_closes_the_least_recently_used_idle_socket(
    emulator: FakeResponsesServer,
) -> None:
    with Client(
        api_key=KEY, base_url=emulator.http_base_url, transport="websocket", max_sockets=4
    ) as client:
        answers = {}
        for number in range(10):
            answers[number] = ask(client, [UserMessage("Hello")], session_id=f"s{number}")
            assert len(open_sockets(client)) <= 4
        assert open_sockets(client) == {"s6", "s7", "s8", "s9"}
        ask(client, [UserMessage("Hello")], session_id="s6")  # s6 becomes the most recent
        # s0's socket was closed long ago; its chain survived in the store: turn 2 chains
        ask(client, [UserMessage("Hello"), answers[0], UserMessage("Again")], session_id="s0")
        assert open_sockets(client) == {"s0", "s6", "s8", "s9"}  # s7 was the least recent
        assert wait_for(lambda: emulator.stats.active_connections <= 4)
    sent = responses(emulator)
    chained = [r for r in sent if r.body.get("previous_response_id")]
    assert [r.body["previous_response_id"] for r in chained] == [answers[0].response_id]
    assert len(chained[0].body["input"]) == 1
    assert emulator.stats.handshakes == 11  # s0..s9, then s0 again; s6 kept its socket


def test_a_busy_socket_is_never_closed_and_a_turn_waits_for_an_idle_one(
    emulator: FakeResponsesServer,
) -> None:
    with Client(
        api_key=KEY, base_url=emulator.http_base_url, transport="websocket", max_sockets=4
    ) as client:
        busy = []
        for number in range(4):
            turn = client.stream(MODEL, context([UserMessage("Hi")]), session_id=f"b{number}")
            assert isinstance(next(turn), Start)  # the turn is open: its socket is busy
            busy.append(turn)
        results: list[Any] = []

        def fifth() -> None:
            results.append(client.stream(MODEL, context([UserMessage("Hi")]), session_id="b4"))
            results.append(results[0].result())

        waiting = threading.Thread(target=fifth)
        waiting.start()
        try:
            assert wait_for(lambda: client._budget is not None and client._budget.waiting == 1)
            assert open_sockets(client) == {"b0", "b1", "b2", "b3"}  # none was closed
            assert len(results) == 1  # still waiting
            assert busy[2].result().stop_reason == "stop"  # b2's turn ends: its socket is idle
        finally:
            waiting.join(30 * TIME_FACTOR)
        assert not waiting.is_alive()
        assert results[1].stop_reason == "stop"
        assert open_sockets(client) == {"b0", "b1", "b3", "b4"}
        for turn in busy:
            turn.close()


def test_a_turn_that_finds_every_socket_busy_fails_at_its_timeout_naming_max_sockets(
    emulator: FakeResponsesServer,
) -> None:
    with Client(
        api_key=KEY, base_url=emulator.http_base_url, transport="websocket", max_sockets=2
    ) as client:
        busy = [
            client.stream(MODEL, context([UserMessage("Hi")]), session_id=f"b{number}")
            for number in range(2)
        ]
        for turn in busy:
            assert isinstance(next(turn), Start)
        late = client.stream(
            MODEL,
            context([UserMessage("Hi")]),
            session_id="late",
            options=StreamOptions(timeout=0.3 * TIME_FACTOR),
        )
        final = list(late)[-1]
        assert isinstance(final, Error)
        assert isinstance(final.exception, ConcurrencyError)
        assert "max_sockets=2" in str(final.exception)
        assert open_sockets(client) == {"b0", "b1"}
        for turn in busy:
            assert turn.result().stop_reason == "stop"


@pytest.mark.parametrize("store", [True, False], ids=["store-true", "store-false"])
def test_a_worker_on_http_only_continues_a_stored_chain(
    redis_server: RedisServer, emulator: FakeResponsesServer, store: bool
) -> None:
    with (
        worker(emulator, redis_server.url) as a,
        Client(
            api_key=KEY,
            base_url=emulator.http_base_url,
            transport="sse",
            chain_store=RedisChainStore(redis_server.url),
        ) as b,
    ):
        messages: list[Any] = [UserMessage("Hello there")]
        first = ask(a, messages, store=store)
        turn = b.stream(
            MODEL,
            context([*messages, first, UserMessage("Over HTTP now")]),
            session_id="chat",
            options=StreamOptions(store=store),
        )
        assert turn.result().stop_reason == "stop"
        assert turn.transport == "sse"
    sent = responses(emulator)
    assert [r.transport for r in sent] == ["websocket", "sse"]
    if store:
        assert sent[1].body["previous_response_id"] == first.response_id
        assert len(sent[1].body["input"]) == 1
    else:  # that response lives in a's socket alone
        assert "previous_response_id" not in sent[1].body
        assert len(sent[1].body["input"]) == 3


def test_release_forgets_the_chain_everywhere_and_another_key_ignores_it(
    redis_server: RedisServer, emulator: FakeResponsesServer
) -> None:
    raw = redis_server.client()
    try:
        with (
            worker(emulator, redis_server.url) as a,
            Client(
                api_key=KEY + "-other",
                base_url=emulator.http_base_url,
                chain_store=RedisChainStore(redis_server.url),
            ) as other_key,
        ):
            messages: list[Any] = [UserMessage("Hello there")]
            first = ask(a, messages)
            # a record made with another key is not this client's to use: a full request
            with pytest.raises(AuthenticationError):  # the emulator knows one key only
                ask(other_key, [*messages, first, UserMessage("Mine?")])
            assert raw.exists("openai-ws:chain:chat")
            assert a.release_session("chat")
            assert not raw.exists("openai-ws:chain:chat")
    finally:
        raw.close()
    sent = responses(emulator)
    assert all("previous_response_id" not in r.body for r in sent)


def test_a_hung_redis_costs_a_turn_at_most_its_socket_timeout(
    redis_server: RedisServer, emulator: FakeResponsesServer, caplog: pytest.LogCaptureFixture
) -> None:
    process = redis_server.process
    assert process is not None
    with worker(emulator, redis_server.url) as a, worker(emulator, redis_server.url) as b:
        messages: list[Any] = [UserMessage("Hello there")]
        first = ask(a, messages)
        process.send_signal(signal.SIGSTOP)  # accepts nothing, answers nothing: a hung server
        try:
            with caplog.at_level(logging.WARNING, logger="openai_ws"):
                second = ask(b, [*messages, first, UserMessage("Anyone?")])
        finally:
            process.send_signal(signal.SIGCONT)
    assert second.stop_reason == "stop"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "Timeout" in warnings[0].getMessage()
    assert "previous_response_id" not in responses(emulator)[1].body
