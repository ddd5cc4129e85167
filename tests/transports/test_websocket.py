"""WebSocketConnection against the emulator (and a few raw loopback servers)."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from openai_ws.exceptions import (
    APIError,
    AuthenticationError,
    ConcurrencyError,
    ConfigurationError,
    ConnectError,
    ConnectionClosed,
    PreviousResponseNotFound,
    ProtocolError,
    StreamTimeout,
    TransportError,
)
from openai_ws.protocol import ErrorEvent, ResponseCompleted, ServerEvent
from openai_ws.testing import (
    BadFrame,
    CloseSocket,
    Failure,
    FakeResponsesServer,
    RefuseUpgrade,
    Rejection,
    ScriptedModel,
    Stall,
    Text,
)
from openai_ws.transports import InsecureTransportWarning, WebSocketConnection, WebSocketState
from tests.conftest import FAST, KEY, TIME_FACTOR, wait_for
from tests.transports.servers import ConnectProxy, FixedResponseServer, SilentServer, env

TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
QUICK = (0.01, 0.02, 0.03, 0.04, 0.05)


def connection(server: FakeResponsesServer, **kwargs: Any) -> WebSocketConnection:
    kwargs.setdefault("backoff", QUICK)
    return WebSocketConnection(server.ws_url, api_key=KEY, **kwargs)


def body(text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": "m", "input": text, **extra}


def types(events: list[ServerEvent]) -> list[str]:
    return [e.type for e in events]


# -- handshake ----------------------------------------------------------------------------------


def test_handshake_sends_key_and_headers(server: FakeResponsesServer) -> None:
    with connection(
        server, headers={"OpenAI-Beta": "responses_websockets=2026-02-06", "X-App": "t"}
    ) as conn:
        assert conn.state is WebSocketState.NEW
        conn.connect()
        conn.connect()  # already open: a no-op
        assert conn.state is WebSocketState.OPEN
        assert conn.is_connected()
    (handshake,) = server.handshakes
    assert handshake.status == 101
    assert handshake.headers["authorization"] == "<redacted>"
    assert handshake.headers["openai-beta"] == "responses_websockets=2026-02-06"
    assert handshake.headers["x-app"] == "t"
    assert "origin" not in handshake.headers
    assert conn.state is WebSocketState.CLOSED


@pytest.mark.parametrize(("status", "retryable"), [(426, False), (500, True), (429, True)])
def test_refused_upgrade_is_a_connect_error(
    server: FakeResponsesServer, status: int, retryable: bool
) -> None:
    server.inject(RefuseUpgrade(status, message="not here", headers={"x-why": "test"}))
    conn = connection(server)
    with pytest.raises(ConnectError) as info:
        conn.connect()
    error = info.value
    assert error.status_code == status
    assert error.headers["x-why"] == "test"
    assert error.retryable is retryable
    assert "not here" in str(error)
    assert isinstance(error, ConnectionError)
    conn.close()


@pytest.mark.parametrize("status", [401, 403])
def test_a_handshake_refused_for_the_key_is_an_authentication_error(
    server: FakeResponsesServer, status: int
) -> None:
    server.inject(RefuseUpgrade(status, message="key revoked", headers={"x-why": "test"}))
    conn = connection(server)
    with pytest.raises(AuthenticationError) as info:
        conn.connect()
    error = info.value
    assert error.status_code == status
    assert error.message == "key revoked"  # the server's error body
    assert error.headers["x-why"] == "test"
    assert error.retryable is False
    conn.close()


def test_wrong_key_is_refused_and_not_shown(server: FakeResponsesServer) -> None:
    secret = "sk-wrong-key-abcdefghijklmnop"
    conn = WebSocketConnection(server.ws_url, api_key=secret)
    with pytest.raises(AuthenticationError) as info:
        conn.connect()
    assert info.value.status_code == 401
    assert "Incorrect API key" in str(info.value)
    assert secret not in str(info.value) + repr(info.value) + repr(info.value.headers)
    conn.close()


def test_connect_timeout() -> None:
    with SilentServer() as silent:
        conn = WebSocketConnection(
            f"ws://127.0.0.1:{silent.port}/v1/responses", api_key=KEY, connect_timeout=0.3
        )
        started = time.monotonic()
        with pytest.raises(ConnectError, match=r"timed out after 0.3s"):
            conn.connect()
        assert time.monotonic() - started < 5 * TIME_FACTOR
        conn.close()


def test_nothing_listening_is_a_connect_error() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conn = WebSocketConnection(f"ws://127.0.0.1:{port}/v1/responses", api_key=KEY)
    with pytest.raises(ConnectError, match="could not connect") as info:
        conn.connect()
    assert info.value.retryable
    assert info.value.status_code is None
    conn.close()


def test_handshake_redirect_is_not_followed() -> None:
    with FixedResponseServer(b"") as target:
        location = f"ws://127.0.0.1:{target.port}/steal"
        redirect = (
            f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()
        )
        with FixedResponseServer(redirect) as origin:
            conn = WebSocketConnection(f"ws://127.0.0.1:{origin.port}/v1/responses", api_key=KEY)
            with pytest.raises(ConnectError, match="redirected") as info:
                conn.connect()
            conn.close()
        assert info.value.status_code == 302
        assert info.value.retryable is False
        assert target.received == []  # the key was never carried there


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "http://x/v1/responses"}, "ws:// or wss://"),
        ({"max_retries": -1}, "max_retries"),
        ({"backoff": ()}, "backoff"),
        ({"connect_timeout": 0}, "positive"),
        ({"headers": {"X-Bad": "a\r\nb"}}, "line break"),
    ],
)
def test_configuration_is_checked(kwargs: dict[str, Any], message: str) -> None:
    url = kwargs.pop("url", "ws://127.0.0.1:1/v1/responses")
    with pytest.raises(ConfigurationError, match=message):
        WebSocketConnection(url, api_key=KEY, **kwargs)


# -- TLS ----------------------------------------------------------------------------------------


@pytest.fixture
def tls_server(tls_context: ssl.SSLContext) -> Iterator[FakeResponsesServer]:
    with FakeResponsesServer(latency=FAST, ssl_context=tls_context) as emulator:
        yield emulator


def test_tls_verifies_with_the_ca(tls_server: FakeResponsesServer, authority: trustme.CA) -> None:
    with (
        authority.cert_pem.tempfile() as ca_file,
        WebSocketConnection(tls_server.ws_url, api_key=KEY, sslopt={"ca_certs": ca_file}) as conn,
    ):
        events = list(conn.create(body()))
    assert events[-1].type == "response.completed"


def test_tls_fails_clearly_without_the_ca(tls_server: FakeResponsesServer) -> None:
    conn = WebSocketConnection(tls_server.ws_url, api_key=KEY)
    with pytest.raises(ConnectError, match="certificate verification failed") as info:
        conn.connect()
    assert info.value.retryable is False
    conn.close()


def test_disabling_verification_is_never_silent(
    tls_server: FakeResponsesServer, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.warns(InsecureTransportWarning, match="TLS verification is disabled"):
        conn = WebSocketConnection(
            tls_server.ws_url, api_key=KEY, sslopt={"cert_reqs": ssl.CERT_NONE}
        )
    assert "TLS verification is disabled" in caplog.text
    events = list(conn.create(body()))
    conn.close()
    assert events[-1].type == "response.completed"


# -- proxies ------------------------------------------------------------------------------------

NO_PROXY_ENV = dict.fromkeys(
    (
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
    )
)


def test_proxy_argument_tunnels_with_connect(server: FakeResponsesServer) -> None:
    with ConnectProxy() as proxy, env(**NO_PROXY_ENV):
        with connection(server, proxy=f"http://user:pass@127.0.0.1:{proxy.port}") as conn:
            assert list(conn.create(body()))[-1].type == "response.completed"
        (head,) = proxy.received
    assert head.startswith(f"CONNECT 127.0.0.1:{server.port} HTTP/1.1".encode())
    assert b"Proxy-Authorization: Basic dXNlcjpwYXNz" in head
    assert KEY.encode() not in head  # the key travels inside the tunnel only


def test_proxy_from_the_environment_and_no_proxy(server: FakeResponsesServer) -> None:
    with ConnectProxy() as proxy:
        with env(**{**NO_PROXY_ENV, "HTTP_PROXY": f"http://127.0.0.1:{proxy.port}"}):
            with connection(server) as conn:
                conn.connect()
            assert len(proxy.received) == 1
            with connection(server, proxy=False) as conn:  # False: never a proxy
                conn.connect()
            assert len(proxy.received) == 1
        with env(
            **{
                **NO_PROXY_ENV,
                "HTTP_PROXY": f"http://127.0.0.1:{proxy.port}",
                "NO_PROXY": "127.0.0.1",
            }
        ):
            with connection(server) as conn:
                conn.connect()
            assert len(proxy.received) == 1  # NO_PROXY covers the host: direct


def test_only_http_proxies() -> None:
    with pytest.raises(ConfigurationError, match="http://"):
        WebSocketConnection(
            "ws://127.0.0.1:1/v1/responses", api_key=KEY, proxy="socks5://127.0.0.1:1080"
        )


# -- responses ----------------------------------------------------------------------------------


def test_create_yields_one_response_and_drops_transport_fields(server: FakeResponsesServer) -> None:
    server.model = ScriptedModel(["Hello world"])
    with connection(server) as conn:
        stream = conn.create(body(stream=True, type="ignored"))
        events = list(stream)
        assert stream.response_id == events[0].raw["response"]["id"]
        assert stream.terminal is events[-1]
        assert list(stream) == []  # ended
    assert types(events)[0] == "response.created"
    assert isinstance(events[-1], ResponseCompleted)
    assert server.requests[-1].body == {"type": "response.create", "model": "m", "input": "hi"}
    assert server.requests[-1].transport == "websocket"


def test_background_is_refused_and_payload_checked(server: FakeResponsesServer) -> None:
    with connection(server) as conn:
        with pytest.raises(ValueError, match="background"):
            conn.create(body(background=True))
        with pytest.raises(TypeError, match="mapping"):
            conn.create(["not", "a", "mapping"])  # type: ignore[arg-type]
        assert list(conn.create(body()))[-1].type == "response.completed"


def test_a_second_concurrent_create_is_a_concurrency_error(server: FakeResponsesServer) -> None:
    with connection(server) as conn:
        first = conn.create(body())
        next(first)
        with pytest.raises(ConcurrencyError, match="one response at a time"):
            conn.create(body())
        with pytest.raises(ConcurrencyError):
            next(conn.events())
        list(first)
        assert list(conn.create(body()))[-1].type == "response.completed"


def test_previous_response_id_follows_completed_responses_only(server: FakeResponsesServer) -> None:
    server.model = ScriptedModel(
        ["one", [Text("x"), Failure()], "three", Rejection(code="bad", message="no"), "five"]
    )
    with connection(server) as conn:
        assert conn.previous_response_id is None
        first = list(conn.create(body(store=False)))
        assert conn.previous_response_id == first[-1].raw["response"]["id"]
        failed = list(conn.create(body(store=False)))
        assert (
            types(failed)[-1] == "error"
        )  # the error ends it; the late response.failed is dropped
        assert conn.previous_response_id is None
        third = list(conn.create(body(store=False)))
        assert types(third)[0] == "response.created"  # not the stale response.failed
        assert third[0].raw["response"]["id"] != failed[0].raw["response"]["id"]
        assert conn.previous_response_id == third[-1].raw["response"]["id"]
        rejected = list(conn.create(body()))
        assert isinstance(rejected[-1], ErrorEvent)
        assert conn.previous_response_id is None
        assert list(conn.create(body()))[-1].type == "response.completed"


def test_chain_on_the_connection_cache(server: FakeResponsesServer) -> None:
    with connection(server) as conn:
        first = list(
            conn.create(
                {"model": "m", "input": "Weather in Paris?", "tools": [TOOL], "store": False}
            )
        )
        call = first[-1].raw["response"]["output"][0]
        second = list(
            conn.create(
                {
                    "model": "m",
                    "tools": [TOOL],
                    "store": False,
                    "previous_response_id": conn.previous_response_id,
                    "input": [
                        {
                            "type": "function_call_output",
                            "call_id": call["call_id"],
                            "output": "18C",
                        }
                    ],
                }
            )
        )
    assert (
        second[-1].raw["response"]["output"][0]["content"][0]["text"]
        == "Here is what I found. Paris: 18C."
    )


def test_warm_up(server: FakeResponsesServer) -> None:
    with connection(server) as conn:
        response_id = conn.warm_up("m", tools=[TOOL], instructions="Be terse.")
        assert conn.previous_response_id == response_id
        assert server.requests[-1].body == {
            "type": "response.create",
            "model": "m",
            "input": [],
            "generate": False,
            "tools": [TOOL],
            "instructions": "Be terse.",
        }
        events = list(
            conn.create({"model": "m", "input": "x", "previous_response_id": response_id})
        )
        assert events[-1].type == "response.completed"
        server.inject(
            Rejection(
                code="previous_response_not_found", message="gone", param="previous_response_id"
            )
        )
        with pytest.raises(PreviousResponseNotFound):
            conn.warm_up("m")
        assert conn.previous_response_id is None


# -- abandoning ---------------------------------------------------------------------------------


def test_breaking_out_abandons_the_response_and_the_next_turn_works(
    server: FakeResponsesServer,
) -> None:
    server.model = ScriptedModel(["a b c d e f g h"], then="repeat")
    with connection(server) as conn:
        for event in conn.create(body(store=False)):
            if event.type == "response.output_text.delta":
                break
        assert conn.previous_response_id is None
        assert conn.state is WebSocketState.DISCONNECTED
        events = list(conn.create(body(store=False)))
        assert events[-1].type == "response.completed"
        assert conn.connections_opened == 2
    connections = {r.connection for r in server.requests}
    assert len(connections) == 2


def test_closing_the_stream_abandons_it(server: FakeResponsesServer) -> None:
    with connection(server) as conn:
        with conn.create(body()) as stream:
            next(stream)
        assert conn.state is WebSocketState.DISCONNECTED
        stream.close()  # idempotent
        assert list(conn.create(body()))[-1].type == "response.completed"


def test_dropping_the_stream_abandons_it(server: FakeResponsesServer) -> None:
    import gc

    with connection(server) as conn:
        stream = conn.create(body())
        next(stream)
        del stream
        gc.collect()
        assert conn.state is WebSocketState.DISCONNECTED
        assert list(conn.create(body()))[-1].type == "response.completed"


# -- drops, reconnects, the retry budget --------------------------------------------------------


def test_reconnect_after_1006(server: FakeResponsesServer) -> None:
    with connection(server) as conn:
        list(conn.create(body(store=False)))
        assert conn.previous_response_id is not None
        server.inject(CloseSocket(after_events=2, code=1006))
        stream = conn.create(body(store=False))
        with pytest.raises(ConnectionClosed) as info:
            list(stream)
        assert info.value.code == 1006
        assert info.value.retryable
        assert conn.previous_response_id is None  # the server's cache went with the socket
        assert list(conn.create(body(store=False)))[-1].type == "response.completed"
        assert conn.connections_opened == 2


@pytest.mark.parametrize("code", [1001, 1011, 1012, 1013])
def test_reconnect_after_retryable_codes(server: FakeResponsesServer, code: int) -> None:
    with connection(server) as conn:
        server.inject(CloseSocket(after_events=1, code=code))
        with pytest.raises(ConnectionClosed) as info:
            list(conn.create(body()))
        assert (info.value.code, info.value.retryable) == (code, True)
        assert list(conn.create(body()))[-1].type == "response.completed"


@pytest.mark.parametrize("code", [1008, 1000, 4001])
def test_no_reconnect_after_final_codes(server: FakeResponsesServer, code: int) -> None:
    with connection(server) as conn:
        server.inject(CloseSocket(after_events=1, code=code, reason="policy"))
        with pytest.raises(ConnectionClosed) as info:
            list(conn.create(body()))
        assert (info.value.code, info.value.retryable) == (code, False)
        with pytest.raises(ConnectionClosed, match="not reopened automatically") as again:
            conn.create(body())
        assert again.value.code == code
        assert conn.connections_opened == 1
        conn.connect()  # an explicit connect reopens
        assert list(conn.create(body()))[-1].type == "response.completed"


def test_retry_budget_is_exhausted(server: FakeResponsesServer) -> None:
    with connection(server, max_retries=3) as conn:
        conn.connect()
        server.inject(RefuseUpgrade(503), times=None)
        server.inject(CloseSocket(after_events=0, code=1006))
        with pytest.raises(ConnectionClosed):
            list(conn.create(body()))
        with pytest.raises(ConnectError, match="after 3 failed attempts"):
            conn.create(body())
        with pytest.raises(ConnectError, match="after 3 failed attempts"):
            conn.create(body())  # it stays given up...
        assert [h.status for h in server.handshakes] == [101, 503, 503, 503]
        server.clear_faults()
        conn.connect()  # ...until connect() is called
        assert list(conn.create(body()))[-1].type == "response.completed"


def test_a_final_refusal_stops_reconnecting_at_once(server: FakeResponsesServer) -> None:
    with connection(server) as conn:
        conn.connect()
        server.inject(RefuseUpgrade(401), times=None)
        server.inject(CloseSocket(after_events=0, code=1006))
        with pytest.raises(ConnectionClosed):
            list(conn.create(body()))
        with pytest.raises(AuthenticationError) as info:
            conn.create(body())
        assert info.value.status_code == 401
        assert [h.status for h in server.handshakes] == [101, 401]


def test_backoff_waits_between_attempts(server: FakeResponsesServer) -> None:
    with connection(server, backoff=(0.05, 0.1, 0.2), max_retries=3) as conn:
        conn.connect()
        server.inject(RefuseUpgrade(500), times=2)
        server.inject(CloseSocket(after_events=0, code=1006))
        with pytest.raises(ConnectionClosed):
            list(conn.create(body()))
        started = time.monotonic()
        assert list(conn.create(body()))[-1].type == "response.completed"
        elapsed = time.monotonic() - started
    assert elapsed >= 0.05 + 0.1  # two refused attempts, each waited for (a lower bound only)
    assert [h.status for h in server.handshakes] == [101, 500, 500, 101]


def test_rotation_before_max_age(server: FakeResponsesServer) -> None:
    with connection(server, max_age=1e-6) as conn:
        list(conn.create(body(store=False)))
        list(conn.create(body(store=False)))
        assert conn.connections_opened == 2
    assert len({r.connection for r in server.requests}) == 2


# -- frames and deadlines -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["non_json", "binary"])
def test_bad_frames_are_protocol_errors_in_order(server: FakeResponsesServer, kind: str) -> None:
    server.inject(BadFrame(after_events=2, kind=kind))
    with connection(server) as conn:
        seen: list[ServerEvent] = []
        with pytest.raises(ProtocolError):
            seen.extend(conn.create(body()))
        assert types(seen) == ["response.created", "response.in_progress"]
        assert conn.state is WebSocketState.DISCONNECTED  # the rest of that reply is not trusted
        assert list(conn.create(body()))[-1].type == "response.completed"


def test_first_event_timeout(server: FakeResponsesServer) -> None:
    server.inject(Stall(30, after_events=0))
    with connection(server) as conn:
        with pytest.raises(StreamTimeout) as info:
            list(conn.create(body(), timeout=5, first_event_timeout=0.2))
        assert (info.value.phase, info.value.timeout) == ("first_event", 0.2)
        assert isinstance(info.value, TimeoutError)
        assert list(conn.create(body()))[-1].type == "response.completed"


def test_idle_timeout(server: FakeResponsesServer) -> None:
    server.inject(Stall(30, after_events=3))
    with connection(server) as conn:
        events: list[str] = []
        with pytest.raises(StreamTimeout) as info:
            events.extend(e.type for e in conn.create(body(), timeout=0.2))
        assert info.value.phase == "idle"
        assert conn.previous_response_id is None
        assert list(conn.create(body()))[-1].type == "response.completed"


def test_frame_larger_than_the_limit(server: FakeResponsesServer) -> None:
    server.model = ScriptedModel([Text("x" * 5000, chunk=5000)])
    with connection(server, max_frame_size=2000) as conn:
        with pytest.raises(ProtocolError, match="exceeds max_frame_size"):
            list(conn.create(body()))


def test_queue_overflow_fails_explicitly(server: FakeResponsesServer) -> None:
    server.model = ScriptedModel([" ".join(["word"] * 50)])
    with connection(server, max_queue=5) as conn:
        stream = conn.create(body())
        link = conn._link
        assert link is not None
        assert link.ended.wait(10 * TIME_FACTOR)  # the reader stopped on its own
        received = []
        with pytest.raises(TransportError, match="fell 5 events behind"):
            received.extend(stream)
        assert len(received) == 5


# -- closing ------------------------------------------------------------------------------------


def test_close_from_another_thread_wakes_the_consumer(server: FakeResponsesServer) -> None:
    server.inject(Stall(30, after_events=1))
    conn = connection(server)
    stream = conn.create(body())
    next(stream)
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            list(stream)
        except BaseException as exc:
            errors.append(exc)

    consumer = threading.Thread(target=consume)
    consumer.start()
    time.sleep(0.05)  # let it block on the queue (it must wake either way)
    started = time.monotonic()
    conn.close()
    consumer.join(5 * TIME_FACTOR)
    assert not consumer.is_alive()
    assert time.monotonic() - started < 5 * TIME_FACTOR
    (error,) = errors
    assert isinstance(error, ConnectionClosed)
    assert "closed by the client" in str(error)
    conn.close()  # idempotent
    assert conn.state is WebSocketState.CLOSED
    with pytest.raises(ConnectionClosed, match="closed by close"):
        conn.create(body())
    with pytest.raises(ConnectionClosed, match="closed by close"):
        conn.connect()


def test_events_iterator_for_raw_use(server: FakeResponsesServer) -> None:
    conn = connection(server)
    conn.send({"type": "response.create", "model": "m", "input": "raw"})
    received = []
    for event in conn.events(timeout=5):
        received.append(event)
        if event.is_terminal:
            break
    assert received[-1].type == "response.completed"
    with pytest.raises(StreamTimeout):
        next(conn.events(timeout=0.1))
    closer = threading.Timer(0.1, conn.close)
    closer.start()
    assert list(conn.events(timeout=10)) == []  # ends quietly when closed by us
    closer.join()


def test_reader_thread_is_a_named_daemon(server: FakeResponsesServer) -> None:
    with connection(server, name="probe") as conn:
        conn.connect()
        readers = [t for t in threading.enumerate() if t.name.startswith("probe-reader-")]
        assert len(readers) == 1
        assert readers[0].daemon


def test_server_shutdown_mid_response_is_a_retryable_close() -> None:
    server = FakeResponsesServer(latency=FAST).start()
    server.inject(Stall(30, after_events=1))
    conn = WebSocketConnection(server.ws_url, api_key=None, backoff=QUICK)
    stream = conn.create(body())
    next(stream)
    server.close()
    with pytest.raises(ConnectionClosed) as info:
        list(stream)
    assert info.value.code == 1001
    assert info.value.retryable
    conn.close()


def test_api_errors_are_events_not_exceptions(server: FakeResponsesServer) -> None:
    server.inject(
        Rejection(
            code="rate_limit_exceeded", message="slow", status=429, headers={"retry-after": "3"}
        )
    )
    with connection(server) as conn:
        (event,) = list(conn.create(body()))
    assert isinstance(event, ErrorEvent)
    error = event.to_exception()
    assert isinstance(error, APIError)
    assert (error.status_code, error.code) == (429, "rate_limit_exceeded")


def test_a_ping_right_after_the_terminal_event_does_not_hold_it_back() -> None:
    """The terminal frame and a ping arrive in one read: the ping is answered inside the
    library's frame loop, which then waits on the socket; the terminal event must already have
    reached the consumer (it once stayed in the reader's batch until the next data frame)."""
    import json as _json

    from tests.transports.servers import FrameScriptServer

    def reply(number: int) -> list[tuple[int, bytes]]:
        rid = f"resp_{number}"
        events = [
            {"type": "response.created", "response": {"id": rid, "status": "in_progress"}},
            {
                "type": "response.completed",
                "response": {"id": rid, "status": "completed", "output": []},
            },
        ]
        return [(0x1, _json.dumps(e).encode()) for e in events] + [(0x9, b"keepalive")]

    with (
        FrameScriptServer(reply) as server,
        WebSocketConnection(f"ws://127.0.0.1:{server.port}/v1/responses", api_key=KEY) as conn,
    ):
        for _ in range(3):
            events = list(conn.create(body(), timeout=5))
            assert [e.type for e in events] == ["response.created", "response.completed"]


def test_an_invalid_frame_between_responses_is_not_blamed_on_the_next_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Junk that arrives while no response is in flight belongs to none: the next create()
    does not fail with it, but does not trust that socket either (it opens a new one)."""
    import json as _json

    from tests.transports.servers import FrameScriptServer

    made = iter(range(100))

    def reply(number: int) -> list[tuple[int, bytes]]:
        rid = f"resp_{next(made)}"  # unique across sockets
        done = {"type": "response.completed", "response": {"id": rid, "status": "completed"}}
        return [(0x1, _json.dumps(done).encode()), (0x1, b"{not json")]

    with (
        FrameScriptServer(reply) as server,
        WebSocketConnection(f"ws://127.0.0.1:{server.port}/v1/responses", api_key=KEY) as conn,
    ):
        assert [e.type for e in conn.create(body(), timeout=5)] == ["response.completed"]
        assert conn.previous_response_id == "resp_0"
        link = conn._link
        assert link is not None
        # until the junk frame has arrived (and waits to be read)
        assert wait_for(lambda: link.pending or not link.queue.empty())
        conn.ensure_connected()
        assert conn.connections_opened == 2  # a new socket, so...
        assert conn.previous_response_id is None  # ...the next turn cannot chain
        assert [e.type for e in conn.create(body(), timeout=5)] == ["response.completed"]
    assert "sent an invalid frame between responses" in caplog.text


def test_needs_connect_after_a_final_close_and_connect_reopens(server: FakeResponsesServer) -> None:
    server.inject(CloseSocket(after_events=1, code=1008))
    with connection(server) as conn:
        assert not conn.needs_connect  # new: the first create() opens it
        with pytest.raises(ConnectionClosed):
            list(conn.create(body()))
        assert conn.needs_connect
        with pytest.raises(ConnectionClosed, match="call connect"):
            conn.create(body())
        conn.connect()
        assert not conn.needs_connect
        assert list(conn.create(body()))[-1].type == "response.completed"
    assert not conn.needs_connect  # closed by close(): nothing reopens it


def test_needs_connect_after_reconnecting_was_given_up() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with FakeResponsesServer(latency=FAST, port=port) as emulator:
        conn = WebSocketConnection(
            emulator.ws_url, api_key=KEY, max_retries=1, backoff=(0.01,), connect_timeout=1
        )
        conn.connect()
    # the server is gone: the drop is retryable, one attempt fails, and that is the budget
    with pytest.raises((ConnectError, ConnectionClosed)):
        list(conn.create(body(), timeout=5))
    with pytest.raises(ConnectError, match="gave up"):
        conn.create(body(), timeout=5)
    assert conn.needs_connect
    conn.close()
