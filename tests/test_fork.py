"""Fork safety with a real ``os.fork()`` (what gunicorn ``--preload``, uWSGI without
``lazy-apps``, Celery's prefork pool and multiprocessing's ``fork`` do).

The emulator runs in the parent. The parent runs a turn on session ``"s"``, then forks. The
child's next turn on ``"s"`` must get its own answer over a new connection, and its
``close()`` must not touch the parent's socket; afterwards the parent goes on over the
socket it had, chained to its previous response. The child reports through a pipe and its
exit code and always leaves with ``os._exit`` (no atexit handler, no emulator teardown).
"""

from __future__ import annotations

import json
import os
import select
import signal
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import pytest

import openai_ws
from openai_ws import Client, Context, StreamOptions, UserMessage
from openai_ws import client as client_module
from openai_ws.testing import FakeResponsesServer, LatencyModel, RecordedRequest
from tests.conftest import KEY, TIME_FACTOR, wait_for
from tests.transports.servers import env

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork"), reason="os.fork() does not exist on this platform"
)

NO_STORE = StreamOptions(store=False)


def in_child(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run *work* in a forked child and return what it returned (a JSON-able dict).

    The child writes its result (or its traceback) to a pipe and ends with ``os._exit``:
    0 when *work* returned, 1 when it raised. A child that outlives its time is killed and
    the test fails.
    """
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a process with threads may deadlock the child:
        # that is the situation under test (the emulator's and the client's threads run here)
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_end)
            try:
                payload = {"ok": True, "result": work()}
                code = 0
            except BaseException:
                payload = {"ok": False, "error": traceback.format_exc()}
            with os.fdopen(write_end, "w", encoding="utf-8") as pipe:
                json.dump(payload, pipe)
        finally:
            os._exit(code)
    os.close(write_end)
    seconds = 30 * TIME_FACTOR
    deadline = time.monotonic() + seconds
    chunks = []
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        # the child's end closes when it exits; a child stuck for good is killed by _wait
        while time.monotonic() < deadline:
            ready, _, _ = select.select([pipe], [], [], 0.1)
            if ready:
                chunk = pipe.read(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    text = b"".join(chunks).decode("utf-8")
    status = _wait(pid, deadline, seconds)
    assert text, f"the child sent nothing (wait status {status})"
    payload: dict[str, Any] = json.loads(text)
    assert payload["ok"], "the child failed:\n" + payload["error"]
    assert os.waitstatus_to_exitcode(status) == 0
    result: dict[str, Any] = payload["result"]
    return result


def _wait(pid: int, deadline: float, seconds: float) -> int:
    """The child's wait status; it is killed (and the test fails) if it is alive at
    *deadline* (*seconds* after it was forked)."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the child did not exit within {seconds:g}s")
        time.sleep(0.01)


def asked(server: FakeResponsesServer, text: str) -> list[RecordedRequest]:
    """The requests whose input holds a user message with *text*."""
    found = []
    for recorded in server.requests:
        body = recorded.body
        items = body.get("input") if isinstance(body, dict) else None
        if isinstance(items, list) and text in json.dumps(items):
            found.append(recorded)
    return found


def session_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("openai-ws-session-")]


def turn(client: Client, context: Context, text: str, transport: str) -> tuple[str, Any]:
    """Ask *text* on session "s": the answer's text and the StreamResponse."""
    context.messages.append(UserMessage(text))
    response = client.stream(
        "gpt-test", context, session_id="s", transport=transport, options=NO_STORE
    )
    message = response.result()
    context.messages.append(message)
    return message.text, response


@pytest.mark.parametrize("transport", ["websocket", "auto", "sse"])
def test_a_forked_child_uses_its_own_connection_and_the_parent_keeps_its_own(
    server: FakeResponsesServer, transport: str
) -> None:
    carrier = "sse" if transport == "sse" else "websocket"
    with Client(api_key=KEY, base_url=server.http_base_url) as client:
        context = Context(messages=[])
        answer, first = turn(client, context, "parent one", transport)
        assert answer == "You said: parent one"
        assert first.transport == carrier
        (parent_request,) = asked(server, "parent one")
        parent_connection = parent_request.connection
        connections_before = server.stats.connections
        threads_before = session_threads()

        def child() -> dict[str, Any]:
            # no reader thread came through the fork; the inherited socket is forgotten
            assert session_threads() == []
            text, response = turn(client, context, "child two", transport)
            client.close()
            assert wait_for(lambda: session_threads() == [])
            return {"answer": text, "transport": response.transport}

        got = in_child(child)
        assert got == {"answer": "You said: child two", "transport": carrier}

        # the child asked on a connection of its own, with the whole conversation (a new
        # socket has no cached response to chain from, and nothing is stored)
        (child_request,) = asked(server, "child two")
        assert child_request.connection != parent_connection
        assert server.stats.connections > connections_before
        assert child_request.body.get("previous_response_id") is None
        assert "parent one" in json.dumps(child_request.body["input"])

        # the parent's connection survived the child's close() and its exit
        answer, second = turn(client, context, "parent three", transport)
        assert answer == "You said: parent three"
        assert second.transport == carrier
        (parent_again,) = asked(server, "parent three")
        assert parent_again.connection == parent_connection
        if carrier == "websocket":  # chained to the parent's first response, a delta
            assert parent_again.body["previous_response_id"] == first.response_id
            assert "child two" not in json.dumps(parent_again.body["input"])
        assert session_threads() == threads_before
    assert wait_for(lambda: session_threads() == [])


def test_a_child_that_only_closes_leaves_the_parent_socket_alone(
    server: FakeResponsesServer,
) -> None:
    with Client(api_key=KEY, base_url=server.http_base_url) as client:
        context = Context(messages=[])
        turn(client, context, "before the fork", "websocket")
        (before,) = asked(server, "before the fork")
        open_before = server.stats.active_connections

        def child() -> dict[str, Any]:
            client.release_session("s")
            client.close()
            return {}

        in_child(child)
        # no close frame, no TCP FIN reached the emulator from the child
        assert server.stats.active_connections == open_before
        answer, _ = turn(client, context, "after the child", "websocket")
        assert answer == "You said: after the child"
        (after,) = asked(server, "after the child")
        assert after.connection == before.connection


def test_the_module_level_default_client_is_fork_safe(server: FakeResponsesServer) -> None:
    saved = client_module._default
    client_module._default = None
    try:
        with env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=server.http_base_url):
            context = Context(messages=[UserMessage("module parent")])
            first = openai_ws.stream(
                "gpt-test", context, session_id="s", transport="websocket", options=NO_STORE
            )
            context.messages.append(first.result())
            (before,) = asked(server, "module parent")

            def child() -> dict[str, Any]:
                context.messages.append(UserMessage("module child"))
                response = openai_ws.stream(
                    "gpt-test", context, session_id="s", transport="websocket", options=NO_STORE
                )
                text = response.result().text
                openai_ws.release_ws_session("s")
                return {"answer": text}

            assert in_child(child) == {"answer": "You said: module child"}
            (child_request,) = asked(server, "module child")
            assert child_request.connection != before.connection

            context.messages.append(UserMessage("module parent again"))
            again = openai_ws.stream(
                "gpt-test", context, session_id="s", transport="websocket", options=NO_STORE
            )
            assert again.result().text == "You said: module parent again"
            (after,) = asked(server, "module parent again")
            assert after.connection == before.connection
            assert after.body["previous_response_id"] == first.response_id
    finally:
        default, client_module._default = client_module._default, saved
        if default is not None:
            default.close()


def test_a_child_forked_while_a_turn_streams_starts_clean(server: FakeResponsesServer) -> None:
    """Fork in the middle of a parent's turn (another thread holds the session's locks): the
    child's turn on the same session neither waits for that turn nor reads its events."""
    server.engine.latency = LatencyModel(
        time_to_first_event=0.0, per_uncached_token=0.0, tokens_per_second=200.0
    )
    with Client(api_key=KEY, base_url=server.http_base_url) as client:
        context = Context(messages=[UserMessage("a long answer " + "word " * 60)])
        parent_turn = client.stream(
            "gpt-test", context, session_id="s", transport="websocket", options=NO_STORE
        )
        next(parent_turn)  # the turn is open, its socket mid-response

        def child() -> dict[str, Any]:
            own = Context(messages=[UserMessage("child while streaming")])
            response = client.stream(
                "gpt-test", own, session_id="s", transport="websocket", options=NO_STORE
            )
            text = response.result().text
            client.close()
            return {"answer": text}

        assert in_child(child) == {"answer": "You said: child while streaming"}
        message = parent_turn.result()
        assert message.text.startswith("You said: a long answer")
        (parent_request,) = asked(server, "a long answer")
        (child_request,) = asked(server, "child while streaming")
        assert child_request.connection != parent_request.connection


def test_a_fork_that_runs_no_python_fork_hooks_is_noticed_at_the_next_turn(
    server: FakeResponsesServer,
) -> None:
    """uWSGI forks its workers with the C library's fork(), which runs none of Python's fork
    hooks: the client notices the new process id at the child's next turn. (A raw C fork()
    leaves the child's interpreter half set up, so the test forks with os.fork() and keeps
    this client out of the hook instead: for it, no hook ran.)"""
    with Client(api_key=KEY, base_url=server.http_base_url) as client:
        context = Context(messages=[])
        before, first = turn(client, context, "before", "websocket")
        assert "before" in before
        parent_connection = asked(server, "before")[0].connection

        def work() -> dict[str, Any]:
            text, _ = turn(client, context, "in the child", "websocket")
            client.close()
            return {"text": text}

        client_module._CLIENTS.discard(client)  # the at-fork hook will not see this client
        try:
            child = in_child(work)
        finally:
            client_module._CLIENTS.add(client)
        assert "in the child" in child["text"]
        (child_request,) = asked(server, "in the child")
        assert child_request.connection != parent_connection
        assert "previous_response_id" not in child_request.body
        text, _ = turn(client, context, "after", "websocket")
        assert "after" in text
        (after,) = asked(server, "after")
        assert after.connection == parent_connection  # the parent's socket went on untouched
        assert after.body.get("previous_response_id") == first.response_id
