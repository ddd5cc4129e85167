"""SSETransport the way deployments use it: cancelled from another thread at every stage,
through a proxy (or explicitly not), with rotating keys, and across ``os.fork()``."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from openai_ws import Client, Context, UserMessage
from openai_ws.events import Error, StreamEvent
from openai_ws.exceptions import ConnectionClosed
from openai_ws.testing import FakeResponsesServer, ScriptedModel, Stall
from openai_ws.transports import SSETransport
from openai_ws.transports._common import Deadline
from tests.conftest import FAST, KEY, TIME_FACTOR, wait_for
from tests.transports.servers import ConnectProxy, _Listener, env
from tests.transports.test_http_framing import ScriptServer, chunk, chunked_head, script

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
#: every proxy variable removed, in both cases
NO_PROXY_ENV: dict[str, str | None] = dict.fromkeys(
    [*PROXY_VARIABLES, *(name.upper() for name in PROXY_VARIABLES)]
)


def body(text: str = "hi") -> dict[str, Any]:
    return {"model": "m", "input": text}


def ctx(text: str = "hi") -> Context:
    return Context(messages=[UserMessage(text)])


def never_answers(server: ScriptServer, conn: int, index: int, client: socket.socket) -> bool:
    server.stopping.wait()
    return False


# -- close() from another thread, at every stage --------------------------------------------------


def test_cancel_while_waiting_for_the_headers_returns_at_once() -> None:
    deadline = Deadline(None)
    cancelled_at: list[float] = []

    def cancel_once_sent(server: ScriptServer) -> None:
        if wait_for(lambda: server.requests):
            cancelled_at.append(time.monotonic())
            deadline.cancel()

    with (
        ScriptServer(never_answers) as server,
        SSETransport(f"http://127.0.0.1:{server.port}/v1", api_key=KEY, timeout=(5, 10)) as sse,
    ):
        canceller = threading.Thread(target=cancel_once_sent, args=(server,))
        canceller.start()
        try:
            with pytest.raises(ConnectionClosed, match="cancelled"):
                sse.open(body(), deadline)
            returned = time.monotonic()
        finally:
            canceller.join(10 * TIME_FACTOR)
        assert cancelled_at, "the request never reached the server"
        assert returned - cancelled_at[0] < 1.0 * TIME_FACTOR  # not the 10 s read timeout
        with pytest.raises(ConnectionClosed):  # a cancelled deadline sends nothing
            sse.open(body(), deadline)
        assert len(server.requests) == 1


def consume(stream: Any, into: list[StreamEvent]) -> threading.Thread:
    def run() -> None:
        into.extend(stream)

    thread = threading.Thread(target=run, name="consumer")
    thread.start()
    return thread


def test_stream_close_from_another_thread_while_waiting_for_headers() -> None:
    received: list[StreamEvent] = []
    with (
        ScriptServer(never_answers) as server,
        Client(
            api_key=KEY,
            base_url=f"http://127.0.0.1:{server.port}/v1",
            transport="sse",
            timeout=30,
        ) as client,
    ):
        stream = client.stream("m", ctx())
        consumer = consume(stream, received)
        assert wait_for(lambda: server.requests)
        closed = time.monotonic()
        stream.close()
        consumer.join(10 * TIME_FACTOR)
        assert not consumer.is_alive()
        assert time.monotonic() - closed < 1.0 * TIME_FACTOR
    assert isinstance(received[-1], Error)
    assert received[-1].reason == "aborted"


def test_stream_close_from_another_thread_mid_body(server: FakeResponsesServer) -> None:
    server.model = ScriptedModel(["one two three"])
    server.inject(Stall(30, after_events=3), transport="sse")
    received: list[StreamEvent] = []
    with Client(api_key=KEY, base_url=server.http_base_url, transport="sse", timeout=30) as client:
        stream = client.stream("m", ctx())
        consumer = consume(stream, received)
        assert wait_for(lambda: len(received) >= 1)
        closed = time.monotonic()
        stream.close()
        consumer.join(10 * TIME_FACTOR)
        assert not consumer.is_alive()
        assert time.monotonic() - closed < 1.0 * TIME_FACTOR
    assert isinstance(received[-1], Error)
    assert received[-1].reason == "aborted"


# -- proxy= covers HTTP too ---------------------------------------------------------------------


class ForwardProxy(_Listener):
    """A plain HTTP proxy: takes absolute-form requests (``POST http://host:port/path``),
    records their request lines, and forwards each one on a connection of its own."""

    def handle(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            data = self.read_head(client)
            if b"\r\n\r\n" not in data:
                return  # the client went away before its request's head
            head, _, rest = data.partition(b"\r\n\r\n")
            request_line, *lines = head.split(b"\r\n")
            self.received.append(request_line)
            method, target, version = request_line.split(b" ")
            url = urllib.parse.urlsplit(target.decode())
            upstream = socket.create_connection((url.hostname or "", url.port or 80), timeout=5)
            self._clients.append(upstream)
            kept = [
                line
                for line in lines
                if not line.lower().startswith((b"connection:", b"proxy-connection:"))
            ]
            upstream.sendall(
                b" ".join([method, url.path.encode(), version])
                + b"\r\n"
                + b"\r\n".join([*kept, b"Connection: close"])
                + b"\r\n\r\n"
                + rest
            )
            forward = threading.Thread(
                target=ConnectProxy._pipe, args=(client, upstream), name="ForwardProxy-pipe"
            )
            self._threads.append(forward)
            forward.start()
            # one request per connection: the client must not reuse it
            head = b""
            while b"\r\n" not in head:
                data = upstream.recv(65536)
                if not data:
                    break
                head += data
            status, _, rest = head.partition(b"\r\n")
            client.sendall(status + b"\r\nConnection: close\r\n" + rest)
            ConnectProxy._pipe(upstream, client)


@pytest.mark.parametrize("where", ["argument", "environment"])
def test_http_goes_through_the_proxy(server: FakeResponsesServer, where: str) -> None:
    with ForwardProxy() as proxy:
        address = f"http://127.0.0.1:{proxy.port}"
        given = address if where == "argument" else None
        with (
            env(**{**NO_PROXY_ENV, "HTTP_PROXY": address if where == "environment" else None}),
            Client(
                api_key=KEY, base_url=server.http_base_url, transport="sse", proxy=given
            ) as client,
        ):
            assert client.stream("m", ctx()).result().text
    target = f"{server.http_base_url}/responses".encode()
    assert proxy.received == [b"POST " + target + b" HTTP/1.1"]
    assert len(server.requests) == 1


def test_proxy_false_means_direct_even_if_the_environment_names_one(
    server: FakeResponsesServer,
) -> None:
    with ForwardProxy() as proxy:
        address = f"http://127.0.0.1:{proxy.port}"
        with (
            env(**{**NO_PROXY_ENV, "HTTP_PROXY": address, "http_proxy": address}),
            Client(
                api_key=KEY, base_url=server.http_base_url, transport="sse", proxy=False
            ) as client,
        ):
            assert client.stream("m", ctx()).result().text
            assert client.stream("m", ctx()).result().text
    assert proxy.received == []
    assert len(server.requests) == 2


def test_an_explicit_proxy_wins_over_the_environment(server: FakeResponsesServer) -> None:
    with ForwardProxy() as chosen, ForwardProxy() as other:
        with (
            env(**{**NO_PROXY_ENV, "HTTP_PROXY": f"http://127.0.0.1:{other.port}"}),
            SSETransport(
                server.http_base_url, api_key=KEY, proxy=f"127.0.0.1:{chosen.port}"
            ) as sse,
        ):
            for _ in range(2):  # the environment is not merged into the stored setting
                assert list(sse.create(body()))[-1].type == "response.completed"
    assert len(chosen.received) == 2
    assert other.received == []


# -- key rotation -------------------------------------------------------------------------------

NEW_KEY = "sk-test-deploy-rotated-fedcba9876543210"


def test_a_rotated_key_function_reaches_every_http_request(server: FakeResponsesServer) -> None:
    current = [KEY]
    with Client(
        api_key=lambda: current[0], base_url=server.http_base_url, transport="sse"
    ) as client:
        assert client.stream("m", ctx()).result().text
        current[0] = NEW_KEY
        server.api_key = NEW_KEY  # the old key is revoked
        assert client.stream("m", ctx()).result().text
    assert len(server.requests) == 2


def test_a_rotated_environment_key_reaches_every_http_request(
    server: FakeResponsesServer,
) -> None:
    with env(OPENAI_API_KEY=KEY):
        client = Client(base_url=server.http_base_url, transport="sse")
    with client:
        with env(OPENAI_API_KEY=KEY):
            assert client.stream("m", ctx()).result().text
        server.api_key = NEW_KEY
        with env(OPENAI_API_KEY=NEW_KEY):
            assert client.stream("m", ctx()).result().text


# -- os.fork() ----------------------------------------------------------------------------------


def wait_child(pid: int) -> int:
    """The child's exit code; kills it and fails if it does not end in time."""
    limit = time.monotonic() + 30 * TIME_FACTOR
    while time.monotonic() < limit:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung")


@pytest.fixture(params=["http", "https"])
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fork_setup(
    scheme: str, authority: Any, tls_context: ssl.SSLContext
) -> Iterator[tuple[FakeResponsesServer, str | bool]]:
    """The emulator over plain HTTP or TLS, and what ``verify`` trusts it."""
    if scheme == "http":
        with FakeResponsesServer(latency=FAST, api_key=KEY) as plain:
            yield plain, True
        return
    with (
        authority.cert_pem.tempfile() as ca_file,
        FakeResponsesServer(latency=FAST, api_key=KEY, ssl_context=tls_context) as secure,
    ):
        yield secure, ca_file


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
@pytest.mark.parametrize("child", ["discard-then-request", "close"])
def test_a_forked_child_never_touches_the_parents_pooled_connection(
    fork_setup: tuple[FakeResponsesServer, str | bool], child: str
) -> None:
    server, verify = fork_setup
    with SSETransport(server.http_base_url, api_key=KEY, verify=verify) as sse:
        assert list(sse.open(body("parent 1"), Deadline(None)))[-1].type == "response.completed"
        assert server.stats.connections == 1  # pooled
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code, never return into pytest
            code = 70
            try:
                if child == "close":
                    sse.close()
                    code = 0
                else:
                    sse.discard()
                    events = list(sse.open(body("child"), Deadline(None)))
                    code = 0 if events[-1].type == "response.completed" else 71
            finally:
                os._exit(code)
        assert wait_child(pid) == 0
        assert list(sse.open(body("parent 2"), Deadline(None)))[-1].type == "response.completed"
    by_input = {r.body["input"]: r.connection for r in server.requests}
    # the parent's second request went over its first connection, which the child's
    # discard()/close() left working (no shutdown(), no TLS close_notify)
    assert by_input["parent 2"] == by_input["parent 1"]
    if child == "close":
        assert server.stats.connections == 1
    else:
        assert by_input["child"] != by_input["parent 1"]
        assert server.stats.connections == 2


# -- the worker threads that wait for response headers ----------------------------------------


def runners() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "openai-ws-http-request"}


def test_one_worker_thread_serves_consecutive_requests(server: FakeResponsesServer) -> None:
    seen: set[threading.Thread] = set()
    with SSETransport(server.http_base_url, api_key=KEY) as sse:
        for n in range(4):
            assert list(sse.open(body(f"turn {n}"), Deadline(None)))[-1].type == (
                "response.completed"
            )
            seen |= runners()
        assert len(seen) == 1  # handed each request in turn, not started for each
    # close() ended the waiting one at once
    assert not any(t.is_alive() for t in seen)


def test_an_idle_worker_thread_ends_on_its_own(server: FakeResponsesServer) -> None:
    sse = SSETransport(server.http_base_url, api_key=KEY)
    try:
        assert list(sse.open(body(), Deadline(None)))[-1].type == "response.completed"
        (worker,) = runners()
        # RUNNER_IDLE (1 s) after its request, with no close()
        assert wait_for(lambda: not worker.is_alive())
    finally:
        sse.close()


def test_an_abandoned_request_does_not_hold_up_the_next() -> None:
    """A request abandoned while its worker still waits for the headers: the next request
    gets another worker, and the abandoned one's response is closed when it comes."""
    gate = threading.Event()

    def reply(server: ScriptServer, conn: int, index: int, client: socket.socket) -> bool:
        if conn == 1:
            gate.wait(10 * TIME_FACTOR)  # the headers come only after the caller gave up
        events = b"".join(chunk(e) for e in script(3))
        client.sendall(chunked_head() + events + b"0\r\n\r\n")
        return True

    with (
        ScriptServer(reply) as server,
        SSETransport(f"http://127.0.0.1:{server.port}/v1", api_key=KEY) as sse,
    ):
        deadline = Deadline(None)
        canceller = threading.Thread(
            target=lambda: wait_for(lambda: server.requests) and deadline.cancel()
        )
        canceller.start()
        with pytest.raises(ConnectionClosed, match="cancelled"):
            sse.open(body("abandoned"), deadline)
        canceller.join()
        assert list(sse.open(body("next"), Deadline(None)))[-1].type == "response.completed"
        assert len(runners()) == 2  # the abandoned request's worker still waits
        gate.set()
        # the abandoned request's response came and was closed, not left open
        assert wait_for(lambda: 1 in server.closed_by_client)
    assert wait_for(lambda: not runners())
