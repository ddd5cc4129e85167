"""Client: configuration, the session registry, threads, and the module-level mirrors."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import openai_ws
from openai_ws import (
    Client,
    ConfigurationError,
    Context,
    StreamOptions,
    Tool,
    UserMessage,
)
from openai_ws.client import _websocket_url
from openai_ws.testing import FakeResponsesServer, ModelRequest, Text, Turn
from tests.conftest import FAST, wait_for
from tests.transports.servers import env

KEY = "sk-test-client-0123456789abcdef"
ENV_CLEAR = {
    "OPENAI_API_KEY": None,
    "OPENAI_BASE_URL": None,
    "OPENAI_ORG_ID": None,
    "OPENAI_PROJECT_ID": None,
}


@pytest.fixture
def server() -> Iterator[FakeResponsesServer]:
    with FakeResponsesServer(latency=FAST) as emulator:
        yield emulator


def ctx(text: str = "hi") -> Context:
    return Context(messages=[UserMessage(text)])


# -- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://api.openai.com/v1", "wss://api.openai.com/v1/responses"),
        ("http://127.0.0.1:8080/v1/", "ws://127.0.0.1:8080/v1/responses"),
        ("https://proxy.example/openai/v1?x=1", "wss://proxy.example/openai/v1/responses?x=1"),
    ],
)
def test_websocket_url_is_derived(base: str, expected: str) -> None:
    assert _websocket_url(base) == expected


def test_configuration_from_the_environment() -> None:
    with env(
        **{
            **ENV_CLEAR,
            "OPENAI_API_KEY": KEY,
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
            "OPENAI_ORG_ID": "org_9",
            "OPENAI_PROJECT_ID": "proj_9",
        }
    ):
        client = Client()
        assert client.base_url == "http://127.0.0.1:9/v1"
        assert client.websocket_url == "ws://127.0.0.1:9/v1/responses"
        assert (client.organization, client.project) == ("org_9", "proj_9")
        assert client.api_key == KEY
        assert KEY not in repr(client)
    with env(**ENV_CLEAR):
        client = Client()
        assert client.base_url == "https://api.openai.com/v1"
        explicit = Client(
            base_url="http://127.0.0.1:9/v1", websocket_url="ws://127.0.0.1:10/v1/responses"
        )
        assert explicit.websocket_url == "ws://127.0.0.1:10/v1/responses"


def test_missing_key_fails_at_the_first_request_and_names_the_variable() -> None:
    with env(**ENV_CLEAR):
        client = Client(base_url="http://127.0.0.1:9/v1")  # no error yet
        with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
            client.stream("m", ctx())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"transport": "carrier-pigeon"}, "transport"),
        ({"timeout": 0}, "timeout"),
        ({"base_url": "ftp://x/v1"}, "http"),
        ({"websocket_url": "http://x/v1/responses"}, "ws://"),
        ({"max_retries": -1}, "negative"),
    ],
)
def test_bad_configuration(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Client(api_key=KEY, **kwargs)


def test_bad_arguments_raise_at_once(server: FakeResponsesServer) -> None:
    client = Client(api_key=KEY, base_url=server.http_base_url)
    with pytest.raises(TypeError, match="Context"):
        client.stream("m", [UserMessage("x")])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="model"):
        client.stream("", ctx())
    with pytest.raises(TypeError, match="model"):
        client.stream(5, ctx())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="transport"):
        client.stream("m", ctx(), transport="tcp")
    with pytest.raises(ValueError, match="session_id"):
        client.stream("m", ctx(), session_id="")
    with pytest.raises(TypeError, match="options"):
        client.stream("m", ctx(), options=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.stream("m", ctx(), options={"temperature": 0.5, "bogus": 1})
    client.close()
    with pytest.raises(ConfigurationError, match="closed"):
        client.stream("m", ctx())


def test_organization_project_and_headers_reach_both_transports(
    server: FakeResponsesServer,
) -> None:
    with Client(
        api_key=KEY,
        base_url=server.http_base_url,
        organization="org_1",
        project="proj_1",
        headers={"X-App": "a"},
    ) as client:
        client.stream("m", ctx(), transport="websocket").result()
        client.stream("m", ctx(), transport="sse").result()
    handshake = server.handshakes[-1].headers
    http = server.requests[-1].headers
    for headers in (handshake, http):
        assert headers["openai-organization"] == "org_1"
        assert headers["openai-project"] == "proj_1"
        assert headers["x-app"] == "a"


# -- sessions -----------------------------------------------------------------------------------


def test_session_registry(server: FakeResponsesServer) -> None:
    with Client(api_key=KEY, base_url=server.http_base_url) as client:
        assert not client.has_session("a")
        client.stream("m", ctx(), session_id="a").result()
        client.stream("m", ctx(), session_id="b").result()
        assert client.has_session("a")
        assert sorted(client.session_ids) == ["a", "b"]
        assert client.release_session("a") is True
        assert client.release_session("a") is False
        assert not client.has_session("a")
        client.stream("m", ctx(), session_id="b").result()
    assert server.stats.handshakes == 2  # a, b; b's second turn reused its socket


def test_one_off_streams_close_their_socket(server: FakeResponsesServer) -> None:
    with Client(api_key=KEY, base_url=server.http_base_url) as client:
        client.stream("m", ctx()).result()
        client.stream("m", ctx()).result()
        assert client.session_ids == []
    assert server.stats.handshakes == 2


def test_session_is_rebuilt_when_key_or_headers_change(server: FakeResponsesServer) -> None:
    with env(**{**ENV_CLEAR, "OPENAI_API_KEY": "sk-first-key-0123456789"}):
        client = Client(base_url=server.http_base_url)
        conversation = ctx("Hello")
        first = client.stream("m", conversation, session_id="s").result()
        conversation.messages += [first, UserMessage("again")]
        with env(OPENAI_API_KEY="sk-second-key-0123456789"):
            client.stream("m", conversation, session_id="s").result()
        client.stream(
            "m", conversation, session_id="s", options=StreamOptions(headers={"X-Tenant": "t"})
        ).result()
        client.close()
    assert server.stats.handshakes == 3
    assert all(
        "previous_response_id" not in r.body for r in server.requests
    )  # each new socket: full
    assert server.handshakes[-1].headers["x-tenant"] == "t"


def test_a_setting_changed_on_the_client_between_turns_is_used(
    server: FakeResponsesServer,
) -> None:
    # the session's configuration is reused while nothing it is made of changes; the client's
    # attributes are public, so a change to one of them must still reach the next turn
    with Client(api_key=KEY, base_url=server.http_base_url, headers={"X-Team": "a"}) as client:
        conversation = ctx("Hello")
        for _ in range(2):
            conversation.messages += [client.stream("m", conversation, session_id="s").result()]
            conversation.messages.append(UserMessage("again"))
        assert server.stats.handshakes == 1  # unchanged: the same socket
        client.headers["X-Team"] = "b"  # changed in place
        conversation.messages += [client.stream("m", conversation, session_id="s").result()]
        conversation.messages.append(UserMessage("again"))
        assert server.stats.handshakes == 2
        assert server.handshakes[-1].headers["x-team"] == "b"
        client.ping_interval = 7.5  # any other setting of the socket
        client.stream("m", conversation, session_id="s").result()
        assert server.stats.handshakes == 3


def test_idle_sessions_expire(server: FakeResponsesServer) -> None:
    with Client(api_key=KEY, base_url=server.http_base_url, session_idle_timeout=0.05) as client:
        client.stream("m", ctx(), session_id="s").result()
        assert client.has_session("s")
        time.sleep(0.1)  # the idle time is what is being tested
        assert not client.has_session("s")


def test_close_closes_every_session(server: FakeResponsesServer) -> None:
    client = Client(api_key=KEY, base_url=server.http_base_url)
    for name in "abc":
        client.stream("m", ctx(), session_id=name).result()
    client.close()
    client.close()
    assert client.session_ids == []
    assert wait_for(lambda: server.stats.active_connections == 0)


# -- threads ------------------------------------------------------------------------------------


def test_turns_of_one_session_are_serialised(server: FakeResponsesServer) -> None:
    errors: list[BaseException] = []
    texts: list[str] = []
    with Client(api_key=KEY, base_url=server.http_base_url) as client:

        def worker(number: int) -> None:
            try:
                for turn in range(3):
                    message = client.stream(
                        "m", ctx(f"t{number}-{turn}"), session_id="shared"
                    ).result()
                    texts.append(message.text)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert len(texts) == 12
    assert server.stats.handshakes == 1  # one socket carried every turn, one at a time


def test_different_sessions_run_in_parallel(server: FakeResponsesServer) -> None:
    barrier = threading.Barrier(2, timeout=10)

    def both_at_once(request: ModelRequest) -> Turn:
        barrier.wait()  # only passes when two requests are in flight together
        return Turn((Text("together"),))

    server.model = both_at_once
    results: list[str] = []
    with Client(api_key=KEY, base_url=server.http_base_url) as client:
        threads = [
            threading.Thread(
                target=lambda n=n: results.append(
                    client.stream("m", ctx(), session_id=f"s{n}").result().text
                )
            )
            for n in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == ["together", "together"]


def test_a_second_turn_in_the_same_thread_abandons_the_open_one(
    server: FakeResponsesServer,
) -> None:
    with Client(api_key=KEY, base_url=server.http_base_url) as client:
        first = client.stream("m", ctx(), session_id="s")
        next(first)  # left open, still referenced (as after a `break`)
        second = client.stream("m", ctx(), session_id="s")
        assert second.result().text  # no ConcurrencyError, no deadlock
        assert list(first) == []  # the abandoned turn ended: nothing more comes out of it
        assert client.stream("m", ctx(), session_id="s").result().text


# -- the module-level mirrors -------------------------------------------------------------------


def test_module_level_functions_use_a_default_client(server: FakeResponsesServer) -> None:
    import openai_ws.client as client_module

    with env(**{**ENV_CLEAR, "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.http_base_url}):
        client_module._default = None
        try:
            tools = [
                Tool(
                    "get_weather",
                    "w",
                    {"type": "object", "properties": {"city": {"type": "string"}}},
                )
            ]
            events = list(
                openai_ws.stream(
                    "m",
                    Context(messages=[UserMessage("Weather in Oslo?")], tools=tools),
                    session_id="chat",
                )
            )
            assert events[-1].type == "done"
            assert openai_ws.has_ws_session("chat")
            assert openai_ws.release_ws_session("chat")
            assert not openai_ws.has_ws_session("chat")
            assert client_module.default_client() is client_module.default_client()
        finally:
            if client_module._default is not None:
                client_module._default.close()
            client_module._default = None
