"""Abandoned streams: ``break``, ``close()``, a dropped stream, ``close()`` from another thread.

A stream left before its end must end its turn at once, without the garbage collector's help
(these tests switch the cycle collector off), so that the session's next turn runs at once in
any thread; and any number of such turns leaves no thread and no socket behind.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from openai_ws import Client, Context, UserMessage
from openai_ws._bench import ServerProcess, start_emulator
from openai_ws.events import Done, Error, StreamEvent, TextDelta
from openai_ws.testing import FakeResponsesServer, LatencyModel
from tests.conftest import KEY, TIME_FACTOR, report, socket_fds, wait_for

#: long enough that a consumer who stops after the first delta stops mid-stream
LONG = "tell me " + " ".join(f"w{i}" for i in range(300))
#: a turn must not wait for an abandoned one: a short budget turns a wait into an error event
#: (set on the client: a per-turn timeout would give the session another configuration)
QUICK = 10 * TIME_FACTOR
TRANSPORTS = ["websocket", "auto", "sse"]


@pytest.fixture
def server() -> Iterator[FakeResponsesServer]:
    latency = LatencyModel(time_to_first_event=0.0, per_uncached_token=0.0, tokens_per_second=300)
    with FakeResponsesServer(latency=latency) as emulator:
        yield emulator


@pytest.fixture
def no_gc() -> Iterator[None]:
    """No cycle collection during the test: a turn that ends only when collected stays open."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def session_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("openai-ws-session-")]


def ask(text: str) -> Context:
    return Context(messages=[UserMessage(text)])


@pytest.mark.usefixtures("no_gc")
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_break_ends_the_turn_at_once_and_the_next_turn_runs_in_this_thread(
    server: FakeResponsesServer, transport: str
) -> None:
    with Client(
        api_key=KEY, base_url=server.http_base_url, transport=transport, timeout=QUICK
    ) as client:
        for event in client.stream("m", ask(LONG), session_id="s"):
            if isinstance(event, TextDelta):
                break
        assert not client._sessions["s"].busy  # ended by the break, not by a collection
        answer = client.stream("m", ask("next one"), session_id="s").result()
        assert answer.text == "You said: next one"


@pytest.mark.usefixtures("no_gc")
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_break_ends_the_turn_at_once_and_the_next_turn_runs_in_another_thread(
    server: FakeResponsesServer, transport: str
) -> None:
    with Client(
        api_key=KEY, base_url=server.http_base_url, transport=transport, timeout=QUICK
    ) as client:
        for event in client.stream("m", ask(LONG), session_id="s"):
            if isinstance(event, TextDelta):
                break
        finals: list[StreamEvent] = []

        def next_turn() -> None:
            response = client.stream("m", ask("from a thread"), session_id="s")
            finals.append(list(response)[-1])

        worker = threading.Thread(target=next_turn)
        worker.start()
        worker.join(30 * TIME_FACTOR)
        assert not worker.is_alive()
        (final,) = finals
        assert isinstance(final, Done), final  # no ConcurrencyError after a wait
        assert final.message.text == "You said: from a thread"


@pytest.mark.usefixtures("no_gc")
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_stream_kept_after_break_is_abandoned_by_the_next_turn_in_its_thread(
    server: FakeResponsesServer, transport: str
) -> None:
    with Client(
        api_key=KEY, base_url=server.http_base_url, transport=transport, timeout=QUICK
    ) as client:
        kept = client.stream("m", ask(LONG), session_id="s")
        for event in kept:
            if isinstance(event, TextDelta):
                break
        assert client._sessions["s"].busy  # still referenced: still open
        answer = client.stream("m", ask("after it"), session_id="s").result()
        assert answer.text == "You said: after it"
        assert list(kept) == []  # abandoned: it never reads the session's socket again
        kept.close()


@pytest.mark.usefixtures("no_gc")
def test_a_dropped_stream_that_never_started_sends_nothing(server: FakeResponsesServer) -> None:
    with Client(api_key=KEY, base_url=server.http_base_url, timeout=QUICK) as client:
        client.stream("m", ask("never sent"), session_id="s")
        assert client.stream("m", ask("sent"), session_id="s").result().text
        assert [r.body["input"][-1]["content"][0]["text"] for r in server.requests] == ["sent"]


# -- many cycles: nothing left behind ----------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[ServerProcess]:
    # "stream N" answers N one-word deltas at 1,000 a second: 2 s, ample time to leave early
    with start_emulator("default") as running:
        yield running


CYCLES = 50
LEAVE = ("break", "close", "drop", "close_from_thread")


def one_cycle(client: Client, how: str) -> str:
    """One turn on session "s", left early in the way *how* says; what its consumer saw."""
    request = ask("stream 2000")
    if how == "break":
        for event in client.stream("m", request, session_id="s"):
            if isinstance(event, TextDelta):
                break
        return "left"
    if how == "close":
        response = client.stream("m", request, session_id="s")
        for event in response:
            if isinstance(event, TextDelta):
                response.close()
        return "left"
    if how == "drop":
        response = client.stream("m", request, session_id="s")
        next(response)
        next(response)
        del response
        return "left"
    response = client.stream("m", request, session_id="s")
    received: list[StreamEvent] = []
    consumer = threading.Thread(target=lambda: received.extend(response), name="consumer")
    consumer.start()
    assert wait_for(lambda: any(isinstance(e, TextDelta) for e in received))
    response.close()
    consumer.join(10 * TIME_FACTOR)
    assert not consumer.is_alive()
    final = received[-1]
    assert isinstance(final, Error), final
    return final.reason


@pytest.mark.usefixtures("no_gc")
@pytest.mark.parametrize("transport", ["websocket", "sse"])
def test_fifty_abandoned_turns_leave_no_thread_or_socket(
    emulator: ServerProcess, transport: str
) -> None:
    urls = emulator.urls
    threads_before = set(threading.enumerate())
    sockets_before = socket_fds()
    client = Client(
        api_key=urls.api_key, base_url=urls.http_base_url, transport=transport, timeout=QUICK
    )
    most_sockets = 0
    most_threads = 0
    outcomes: dict[str, int] = {}
    try:
        for number in range(CYCLES):
            how = LEAVE[number % len(LEAVE)]
            outcome = one_cycle(client, how)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            assert not client._sessions["s"].busy, f"cycle {number} ({how}) left its turn open"
            most_sockets = max(most_sockets, len(socket_fds() - sockets_before))
            most_threads = max(most_threads, len(session_threads()))
        answer = client.stream("m", ask("and now?"), session_id="s").result()
        assert answer.text == "ok"
        # the count sees this process's sockets: the session's socket (websocket) or the
        # pooled keep-alive connection (sse) of the completed turn is open until close()
        assert len(socket_fds() - sockets_before) == 1
        assert len(session_threads()) == (1 if transport == "websocket" else 0)
    finally:
        client.close()
    assert outcomes == {"left": CYCLES - CYCLES // 4, "aborted": CYCLES // 4}
    # after each abandoned turn its socket and reader thread are gone already
    assert most_sockets == 0, most_sockets
    assert most_threads == 0, most_threads
    assert wait_for(lambda: not socket_fds() - sockets_before), socket_fds() - sockets_before
    assert wait_for(lambda: set(threading.enumerate()) <= threads_before)
    assert wait_for(lambda: emulator.ask("stats")["active_connections"] == 0)
    report(
        f"abandon ({transport}): {CYCLES} abandoned turns (break, close, drop, close from a "
        f"thread), {most_sockets} socket(s) and {most_threads} reader thread(s) left after "
        "any of them, none after close()"
    )
