"""Security at the Client level: the key stays secret under faults; TLS; redirects; frame sizes."""

from __future__ import annotations

import gc
import logging
import ssl
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from openai_ws import Client, ConfigurationError, Context, StreamOptions, UserMessage
from openai_ws.events import Done, Error, StreamEvent
from openai_ws.exceptions import ConnectError, OpenAIWSError, ProtocolError
from openai_ws.testing import (
    BadFrame,
    CloseSocket,
    CutBody,
    FakeResponsesServer,
    RefuseUpgrade,
    Rejection,
    ScriptedModel,
    Stall,
    Text,
)
from tests.conftest import FAST
from tests.transports.servers import FixedResponseServer

KEY = "sk-proj-SecurityTest0123456789ABCDEFghij"


def ctx(text: str = "hello there") -> Context:
    return Context(messages=[UserMessage(text)])


def exception_texts(exc: BaseException) -> list[str]:
    """Everything an exception shows: str, repr, args, and the whole formatted chain."""
    texts = [str(exc), repr(exc), *map(repr, exc.args)]
    texts.extend(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return texts


FAULTS: list[tuple[Any, dict[str, Any]]] = [
    (RefuseUpgrade(401), {}),
    (RefuseUpgrade(500), {}),
    (CloseSocket(after_events=2, code=1011), {}),
    (CloseSocket(after_events=2, code=1008), {}),
    (BadFrame(after_events=1, kind="non_json"), {}),
    (BadFrame(after_events=1, kind="binary"), {}),
    (Stall(2.0, after_events=1), {}),
    (CutBody(after_events=2), {"transport": "sse"}),
    (Rejection(status=429, code="rate_limit_exceeded", headers={"retry-after": "0"}), {}),
    (Rejection(status=500, code="server_error", type="server_error"), {"times": 3}),
    (Rejection(status=400, code="previous_response_not_found"), {}),
    # a server (or proxy) that echoes the key back in its message
    (Rejection(status=401, code="invalid_api_key", message=f"Incorrect API key: {KEY}"), {}),
    (Rejection(status=400, code="bad", message=f"header was Bearer {KEY}"), {"times": 2}),
]


def test_the_key_never_shows_under_faults(caplog: pytest.LogCaptureFixture) -> None:
    shown: list[str] = []  # every text a user could see
    exceptions: list[BaseException] = []
    with (
        caplog.at_level(logging.DEBUG),  # every logger: ours, urllib3's, websocket-client's
        FakeResponsesServer(latency=FAST, api_key=KEY) as server,
        Client(api_key=KEY, base_url=server.http_base_url, fallback_cooldown=0) as client,
    ):
        shown.append(repr(client))
        for mode in ("auto", "websocket", "sse"):
            for number, (fault, where) in enumerate(FAULTS):
                session = f"{mode}-{number}"
                if isinstance(fault, RefuseUpgrade):
                    client.release_session(session)
                server.inject(fault, **where)
                stream = client.stream(
                    "m",
                    ctx(),
                    session_id=session,
                    transport=mode,
                    options=StreamOptions(timeout=0.5),
                )
                shown.append(repr(stream))
                events: list[StreamEvent] = list(stream)
                shown.extend(repr(event) for event in events)
                last = events[-1]
                if isinstance(last, Error):
                    shown.append(repr(last.error))
                    shown.append(str(last.error.error_message))
                    assert last.exception is not None
                    exceptions.append(last.exception)
                else:
                    assert isinstance(last, Done)
                server.clear_faults()
        # errors raised rather than returned: a bad key, and a stream's result()
        bad = Client(api_key="sk-wrong-" + KEY[9:], base_url=server.http_base_url)
        with pytest.raises(OpenAIWSError) as info:
            bad.stream("m", ctx(), transport="websocket").result()
        exceptions.append(info.value)
        bad.close()
        recorded = repr(server.requests) + repr(server.handshakes)
    for exc in exceptions:
        shown.extend(exception_texts(exc))
    shown.extend(record.getMessage() for record in caplog.records)
    shown.append(caplog.text)
    shown.append(recorded)

    assert len(exceptions) >= 12  # the faults did end streams with errors, over every path
    assert any("<redacted>" in str(exc) for exc in exceptions)  # the echoed key was masked
    leaks = [text for text in shown if KEY in text or KEY[8:] in text]
    assert leaks == []
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    assert "<redacted>" in recorded  # the emulator saw the header, and masked it


def test_the_key_is_absent_from_every_object_repr_in_memory() -> None:
    """The reprs of everything the SDK made during a turn (sessions, connections, transports,
    configurations): found through the garbage collector, so nothing is missed by name."""
    with (
        FakeResponsesServer(latency=FAST, api_key=KEY) as server,
        Client(api_key=KEY, base_url=server.http_base_url) as client,
    ):
        client.stream("m", ctx(), session_id="a").result()
        client.stream("m", ctx(), session_id="b", transport="sse").result()
        echoed = []  # kept alive: errors whose server message carries the key
        for transport in ("websocket", "sse"):
            server.inject(Rejection(status=400, code="bad", message=f"Bearer {KEY} refused"))
            echoed.append(list(client.stream("m", ctx(), session_id="a", transport=transport)))
        assert all(isinstance(events[-1], Error) for events in echoed)
        mine = [
            obj
            for obj in gc.get_objects()
            if str(getattr(type(obj), "__module__", "")).startswith("openai_ws")
            and not str(type(obj).__module__).startswith("openai_ws.testing")
            and not isinstance(obj, type)
        ]
        assert len(mine) > 20
        for obj in mine:
            assert KEY not in repr(obj), type(obj)


# -- TLS ----------------------------------------------------------------------------------------


@pytest.fixture
def tls_server(tls_context: ssl.SSLContext) -> Iterator[FakeResponsesServer]:
    with FakeResponsesServer(latency=FAST, api_key=KEY, ssl_context=tls_context) as emulator:
        yield emulator


@pytest.mark.parametrize("transport", ["websocket", "sse", "auto"])
def test_tls_verifies_with_the_ca(
    tls_server: FakeResponsesServer, authority: trustme.CA, transport: str
) -> None:
    assert tls_server.http_base_url.startswith("https://")
    with authority.cert_pem.tempfile() as ca_file:
        with Client(
            api_key=KEY,
            base_url=tls_server.http_base_url,
            sslopt={"ca_certs": ca_file},
            verify=ca_file,
        ) as client:
            stream = client.stream("m", ctx(), session_id="tls", transport=transport)
            assert isinstance(list(stream)[-1], Done)
    expected = "sse" if transport == "sse" else "websocket"
    assert stream.attempts == [f"{expected}: done"]


@pytest.mark.parametrize("transport", ["websocket", "sse", "auto"])
def test_tls_without_the_ca_fails_clearly(tls_server: FakeResponsesServer, transport: str) -> None:
    with Client(api_key=KEY, base_url=tls_server.http_base_url) as client:
        stream = client.stream("m", ctx(), session_id="tls", transport=transport)
        last = list(stream)[-1]
    assert isinstance(last, Error)
    assert isinstance(last.exception, ConnectError)
    assert "certificate verif" in str(last.exception)
    assert last.exception.retryable is False
    assert tls_server.stats.requests == 0  # nothing was sent over an unverified connection
    if transport == "auto":  # tried both, told about the last, and did not loop
        assert stream.attempts == ["websocket: ConnectError", "sse: ConnectError"]


# -- redirects ----------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["websocket", "sse", "auto"])
def test_redirects_to_another_origin_are_refused(transport: str) -> None:
    with FixedResponseServer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") as elsewhere:
        location = f"http://127.0.0.1:{elsewhere.port}/v1/responses"
        redirect = (
            f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        with (
            FixedResponseServer(redirect) as origin,
            Client(api_key=KEY, base_url=f"http://127.0.0.1:{origin.port}/v1") as client,
        ):
            last = list(client.stream("m", ctx(), transport=transport))[-1]
            assert origin.received  # it was asked, with the key...
            assert KEY.encode() in origin.received[0]
    assert isinstance(last, Error)
    assert "307" in str(last.exception)
    assert elsewhere.received == []  # ...and the key was never carried to the other origin


# -- frame size ---------------------------------------------------------------------------------


def test_a_frame_over_max_frame_size_is_refused_cleanly() -> None:
    big = "x" * 200_000  # one delta: one frame of about 200 KB

    def model() -> ScriptedModel:
        return ScriptedModel([Text(big, chunk=len(big)), Text("a small answer")])

    with (
        FakeResponsesServer(model=model(), latency=FAST, api_key=KEY) as server,
        Client(api_key=KEY, base_url=server.http_base_url, max_frame_size=64 * 1024) as client,
    ):
        stream = client.stream("m", ctx(), session_id="s", transport="websocket")
        events = list(stream)
        last = events[-1]
        assert isinstance(last, Error)
        assert isinstance(last.exception, ProtocolError)
        assert "a server frame of 200" in str(last.exception)
        assert "exceeds max_frame_size (65536)" in str(last.exception)
        # the text had started (text_start): nothing is replayed, and nothing big was kept
        assert [e.type for e in events] == ["start", "text_start", "error"]
        assert last.error.text == ""
        # the socket was closed; the session's next turn gets a new one
        done = list(client.stream("m", ctx(), session_id="s", transport="websocket"))[-1]
        assert isinstance(done, Done)
        assert done.message.text == "a small answer"
        assert server.stats.handshakes == 2
    with (
        FakeResponsesServer(model=model(), latency=FAST, api_key=KEY) as server,
        Client(api_key=KEY, base_url=server.http_base_url) as client,
    ):
        assert client.max_frame_size == 64 * 1024 * 1024  # generous by default
        done = list(client.stream("m", ctx(), transport="websocket"))[-1]
        assert isinstance(done, Done)
        assert done.message.text == big


@pytest.mark.parametrize("size", [0, -1])
def test_max_frame_size_must_be_positive(size: int) -> None:
    with pytest.raises(ConfigurationError, match="max_frame_size"):
        Client(api_key=KEY, base_url="http://127.0.0.1:1/v1", max_frame_size=size)
