"""What real deployments do to a turn (issue 11): silent and dead sockets, keepalive, close()
from another thread at every stage, rotated keys. Real servers on 127.0.0.1 throughout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from openai_ws import Client, Context, StreamOptions, UserMessage
from openai_ws.events import Done, Error, StreamEvent
from openai_ws.exceptions import AuthenticationError, ConnectionClosed
from openai_ws.testing import FakeResponsesServer, ScriptedModel, Stall
from tests.conftest import KEY, TIME_FACTOR, wait_for
from tests.transports.servers import MuteWebSocketServer, SilentServer


def ctx(text: str = "hi") -> Context:
    return Context(messages=[UserMessage(text)])


def consume_in_thread(stream: Any) -> tuple[threading.Thread, list[StreamEvent], list[float]]:
    """Iterate *stream* in a thread; the events and the time the last one came are recorded."""
    events: list[StreamEvent] = []
    ended: list[float] = []

    def run() -> None:
        for event in stream:
            events.append(event)
        ended.append(time.monotonic())

    thread = threading.Thread(target=run, name="consumer")
    thread.start()
    return thread, events, ended


# -- a socket that upgrades, then says nothing ------------------------------------------------


def test_a_silent_socket_is_answered_over_http_within_15s_with_the_defaults(
    server: FakeResponsesServer,
) -> None:
    with MuteWebSocketServer() as mute:
        url = f"ws://127.0.0.1:{mute.port}/v1/responses"
        with Client(api_key=KEY, base_url=server.http_base_url, websocket_url=url) as client:
            started = time.monotonic()
            stream = client.stream("m", ctx(), session_id="s")
            events = list(stream)
            elapsed = time.monotonic() - started
    assert isinstance(events[-1], Done)
    assert stream.attempts == ["websocket: StreamTimeout", "sse: done"]
    assert elapsed < 15 * TIME_FACTOR  # the default first_event_timeout is 10 s, not 600 s


def test_keepalive_finds_a_socket_that_died_during_a_silent_phase(
    server: FakeResponsesServer,
) -> None:
    # response.created arrives, then nothing: not even pongs (a peer gone without a FIN)
    with MuteWebSocketServer(created=True) as mute:
        url = f"ws://127.0.0.1:{mute.port}/v1/responses"
        with Client(
            api_key=KEY,
            base_url=server.http_base_url,
            websocket_url=url,
            timeout=60,
            first_event_timeout=30,
            ping_interval=0.2,
            ping_timeout=0.3,
        ) as client:
            started = time.monotonic()
            stream = client.stream("m", ctx(), session_id="s", transport="websocket")
            events = list(stream)
            elapsed = time.monotonic() - started
        assert mute.pings >= 1
    final = events[-1]
    assert isinstance(final, Error)
    assert isinstance(final.exception, ConnectionClosed)
    assert "ping" in str(final.exception)
    assert elapsed < 5 * TIME_FACTOR  # found by the keepalive, not by the 60 s timeout


def test_a_healthy_socket_that_answers_pings_is_never_cut_during_a_long_silence(
    server: FakeResponsesServer,
) -> None:
    server.model = ScriptedModel(["thought about it"])
    server.inject(Stall(1.5, after_events=1), transport="websocket")  # silent after created
    with Client(
        api_key=KEY,
        base_url=server.http_base_url,
        timeout=30,
        ping_interval=0.1,
        ping_timeout=0.3,
    ) as client:
        stream = client.stream("m", ctx(), session_id="s", transport="websocket")
        events = list(stream)
    assert isinstance(events[-1], Done), events[-1]
    assert events[-1].message.text == "thought about it"
    assert stream.attempts == ["websocket: done"]


# -- close() from another thread, at every stage ------------------------------------------------


def assert_aborted_within_a_second(stream: Any, reached: Callable[[], object]) -> None:
    """Close *stream* from this thread once its consumer *reached* the stage under test."""
    thread, events, ended = consume_in_thread(stream)
    assert wait_for(reached)
    time.sleep(0.1)  # the consumer is now blocked in that stage (or about to be)
    closed_at = time.monotonic()
    stream.close()
    thread.join(10 * TIME_FACTOR)
    assert not thread.is_alive()
    assert ended
    assert ended[0] - closed_at < 1.0 * TIME_FACTOR
    final = events[-1]
    assert isinstance(final, Error)
    assert final.reason == "aborted"


def test_close_while_waiting_for_the_sessions_previous_turn(server: FakeResponsesServer) -> None:
    server.inject(Stall(30, after_events=2), transport="websocket")
    with Client(api_key=KEY, base_url=server.http_base_url) as client:
        first = client.stream("m", ctx(), session_id="s")
        holder, _, _ = consume_in_thread(first)  # holds the session's turn, stalled
        assert wait_for(lambda: len(server.requests) == 1)
        second = client.stream("m", ctx(), session_id="s")
        assert_aborted_within_a_second(second, lambda: True)  # blocked before sending anything
        first.close()
        holder.join(10 * TIME_FACTOR)
    assert len(server.requests) == 1  # the second turn never sent its request


def test_close_during_the_websocket_handshake() -> None:
    with SilentServer() as silent:  # accepts TCP, never answers the upgrade
        url = f"ws://127.0.0.1:{silent.port}/v1/responses"
        with Client(
            api_key=KEY, base_url="http://127.0.0.1:9/v1", websocket_url=url, connect_timeout=30
        ) as client:
            stream = client.stream("m", ctx(), transport="websocket")
            assert_aborted_within_a_second(stream, lambda: silent.accepted)


def test_close_during_the_tls_handshake() -> None:
    with SilentServer() as silent:  # accepts TCP, never answers the ClientHello
        url = f"wss://127.0.0.1:{silent.port}/v1/responses"
        with Client(
            api_key=KEY, base_url="https://127.0.0.1:9/v1", websocket_url=url, connect_timeout=30
        ) as client:
            stream = client.stream("m", ctx(), transport="websocket")
            assert_aborted_within_a_second(stream, lambda: silent.accepted)


def test_close_while_waiting_for_the_first_event(server: FakeResponsesServer) -> None:
    server.inject(Stall(30), transport="websocket")
    with Client(api_key=KEY, base_url=server.http_base_url, first_event_timeout=30) as client:
        stream = client.stream("m", ctx(), session_id="s")
        assert_aborted_within_a_second(stream, lambda: server.requests)
        assert client.stream("m", ctx(), session_id="s").result().text  # the session goes on


def test_close_mid_stream(server: FakeResponsesServer) -> None:
    server.model = ScriptedModel(["one two three four five"], then="repeat")
    server.inject(Stall(30, after_events=5), transport="websocket")
    with Client(api_key=KEY, base_url=server.http_base_url) as client:
        stream = client.stream("m", ctx(), session_id="s")
        assert_aborted_within_a_second(stream, lambda: server.requests)
        assert client.stream("m", ctx(), session_id="s").result().text


# -- keys --------------------------------------------------------------------------------------


def test_a_key_function_is_read_again_for_every_new_socket(server: FakeResponsesServer) -> None:
    keys = [KEY]
    with Client(api_key=lambda: keys[0], base_url=server.http_base_url) as client:
        first = client.stream("m", ctx(), session_id="s", transport="websocket").result()
        assert first.text
        server.api_key = "sk-test-rotated-abcdef0123456789"  # the old key is revoked
        keys[0] = server.api_key
        client.release_session("s")  # the next turn needs a new socket
        second = client.stream("m", ctx(), session_id="s", transport="websocket").result()
        assert second.text
    assert [h.status for h in server.handshakes] == [101, 101]


def test_a_revoked_key_on_the_handshake_is_an_authentication_error_without_fallback(
    server: FakeResponsesServer,
) -> None:
    with Client(api_key=KEY, base_url=server.http_base_url) as client:
        server.api_key = "sk-test-someone-else-0123456789"
        events = list(client.stream("m", ctx(), session_id="s", options=StreamOptions()))
    final = events[-1]
    assert isinstance(final, Error)
    assert isinstance(final.exception, AuthenticationError)
    assert final.exception.status_code == 401
    assert "Incorrect API key" in final.exception.message  # the server's own error body
    assert server.requests == []  # no HTTP request with the same key


def test_a_per_turn_timeout_keeps_the_sessions_socket_and_chain(
    server: FakeResponsesServer,
) -> None:
    with Client(api_key=KEY, base_url=server.http_base_url) as client:
        for timeout in (5.0, 8.0, 30.0):
            options = StreamOptions(timeout=timeout)
            client.stream("m", ctx(), session_id="s", options=options).result()
    assert server.stats.connections == 1  # never rebuilt for a different per-turn timeout


def test_abandoning_a_response_on_a_mute_server_does_not_wait_for_its_close_reply(
    server: FakeResponsesServer,
) -> None:
    # the mute server never answers the close frame: the fallback must not wait for it, and
    # the reader must not outlive the socket (websocket-client's abort() is a no-op once a
    # close frame was sent, so the reader used to wait for the next keepalive tick)
    with MuteWebSocketServer() as mute:
        url = f"ws://127.0.0.1:{mute.port}/v1/responses"
        with Client(
            api_key=KEY, base_url=server.http_base_url, websocket_url=url, first_event_timeout=0.3
        ) as client:
            started = time.monotonic()
            stream = client.stream("m", ctx(), session_id="s")
            events = list(stream)
            elapsed = time.monotonic() - started
            assert wait_for(
                lambda: not [t for t in threading.enumerate() if "-reader-" in t.name], 1.0
            )
    assert isinstance(events[-1], Done)
    assert stream.attempts == ["websocket: StreamTimeout", "sse: done"]
    assert elapsed < 0.3 + 1.0 * TIME_FACTOR  # it took 0.3 s + 4 s


def test_without_keepalive_a_silence_longer_than_connect_timeout_is_not_a_drop(
    server: FakeResponsesServer,
) -> None:
    # the handshake's socket timeout (connect_timeout) must not stay on the socket: with pings
    # off, the reader blocks, and only the turn's own timeouts bound the wait
    server.model = ScriptedModel(["after a long think"])
    server.inject(Stall(1.0, after_events=1), transport="websocket")
    with Client(
        api_key=KEY,
        base_url=server.http_base_url,
        connect_timeout=0.3,
        ping_interval=None,
        timeout=30,
    ) as client:
        stream = client.stream("m", ctx(), session_id="s", transport="websocket")
        events = list(stream)
    assert isinstance(events[-1], Done), events[-1]
    assert stream.attempts == ["websocket: done"]
