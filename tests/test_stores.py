"""Chain stores: the fingerprint planner, records, MemoryChainStore, the outage guard, and
RedisChainStore against a real redis-server (started here on a free loopback port)."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from openai_ws import Client, ConfigurationError, MemoryChainStore
from openai_ws.chain import (
    ChainPlan,
    Fingerprint,
    ItemDigest,
    fingerprint,
    plan_from_fingerprint,
    plan_request,
)
from openai_ws.convert import convert_messages_to_input_items, convert_tools
from openai_ws.messages import Tool, ToolResultMessage, UserMessage
from openai_ws.stores import (
    ChainRecord,
    ChainStore,
    ChainStoreError,
    GuardedStore,
    RedisChainStore,
)
from tests.conftest import wait_for

# -- a real Redis -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A redis-server of its own on a free loopback port, without persistence.

    A missing binary fails the test (never a skip): ``apt-get install redis-server``.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(
                "redis-server is not installed: apt-get install redis-server "
                "(.ci/run installs it); the chain-store tests need a real Redis"
            )
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)

        def answers() -> bool:
            try:
                return bool(probe.ping())
            except redis.RedisError:
                return False

        try:
            if not wait_for(answers, 10):
                self.stop()
                pytest.fail(f"redis-server did not answer on port {self.port}")
        finally:
            probe.close()
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


# -- the fingerprint planner agrees with plan_request ------------------------------------------

TOOLS = convert_tools([Tool("get_weather", "weather", {"type": "object"})])
USER = convert_messages_to_input_items([UserMessage("Weather in Paris?")])
USER2 = convert_messages_to_input_items([UserMessage("And Rome?")])
CALL = {
    "type": "function_call",
    "id": "fc_1",
    "call_id": "call_1",
    "name": "get_weather",
    "arguments": '{"city":"Paris"}',
    "status": "completed",
}
CALL_REPLAYED = {k: v for k, v in CALL.items() if k not in ("id", "status")}
RESULT = convert_messages_to_input_items([ToolResultMessage("call_1|fc_1", "get_weather", "18C")])
BASE: dict[str, Any] = {"model": "m", "tools": TOOLS, "store": True, "instructions": "be terse"}
PREVIOUS = {**BASE, "input": USER}


def both(request: dict[str, Any], output: list[dict[str, Any]]) -> tuple[ChainPlan, ChainPlan]:
    exact = plan_request(
        request, previous_request=PREVIOUS, previous_output=output, previous_response_id="resp_1"
    )
    hashed, _ = plan_from_fingerprint(
        request, fingerprint(PREVIOUS, output), previous_response_id="resp_1"
    )
    return exact, hashed


@pytest.mark.parametrize(
    ("name", "request_", "delta"),
    [
        ("continues", {**BASE, "input": [*USER, CALL_REPLAYED, *RESULT]}, True),
        (
            "a setting changed",
            {**BASE, "input": [*USER, CALL_REPLAYED, *RESULT], "store": 0},
            False,
        ),
        ("tools changed", {**BASE, "tools": [], "input": [*USER, CALL_REPLAYED, *RESULT]}, False),
        (
            "metadata may change",
            {**BASE, "metadata": {"a": "b"}, "input": [*USER, CALL_REPLAYED, *RESULT]},
            True,
        ),
        ("history edited", {**BASE, "input": [*USER2, CALL_REPLAYED, *RESULT]}, False),
        ("call dropped", {**BASE, "input": USER + RESULT}, False),
        ("nothing new", {**BASE, "input": [*USER, CALL_REPLAYED]}, False),
        ("shorter", {**BASE, "input": []}, False),
    ],
)
def test_the_fingerprint_planner_agrees_with_plan_request(
    name: str, request_: dict[str, Any], delta: bool
) -> None:
    exact, hashed = both(request_, [CALL])
    assert exact.is_delta is delta, (name, exact.reason)
    assert hashed.is_delta is delta, (name, hashed.reason)
    assert hashed.payload == exact.payload
    assert hashed.previous_response_id == exact.previous_response_id


def test_a_delta_from_a_fingerprint_merges_parallel_wrapper_results() -> None:
    wrapper = {
        "type": "function_call",
        "call_id": "call_w",
        "name": "multi_tool_use.parallel",
        "arguments": '{"tool_uses":[{"recipient_name":"functions.get_weather","parameters":{}},'
        '{"recipient_name":"functions.get_weather","parameters":{}}]}',
    }
    fp = fingerprint(PREVIOUS, [wrapper])
    assert fp.wrappers
    assert fp.wrappers[0]["call_id"] == "call_w"
    record = ChainRecord("resp_1", True, "m", fp)
    again = ChainRecord.from_json(record.to_json())  # what another process reads
    assert again is not None
    prefix = [*USER]
    exact_prefix = plan_request(
        {**BASE, "input": [*prefix, {"type": "message", "role": "user", "content": "x"}]},
        previous_request=PREVIOUS,
        previous_output=[wrapper],
        previous_response_id="resp_1",
    )
    # the wrapper replays as its expanded calls; their results come back as one output
    replayed = [i for i in exact_prefix.payload["input"] if i.get("type") != "message"]
    expanded = plan_request(
        {**BASE, "input": USER + replayed + RESULT},
        previous_request=PREVIOUS,
        previous_output=[wrapper],
        previous_response_id="resp_1",
    )
    hashed, _ = plan_from_fingerprint(
        {**BASE, "input": USER + replayed + RESULT},
        again.fingerprint,
        previous_response_id="resp_1",
    )
    assert hashed.payload == expanded.payload


def test_no_usable_response_or_a_caller_id() -> None:
    request = {**BASE, "input": [*USER, CALL_REPLAYED, *RESULT]}
    fp = fingerprint(PREVIOUS, [CALL])
    plan, _ = plan_from_fingerprint(request, fp, previous_response_id=None)
    assert not plan.is_delta
    assert "previous_response_id" not in plan.payload
    plan, _ = plan_from_fingerprint(request, None, previous_response_id="resp_1")
    assert not plan.is_delta
    plan, _ = plan_from_fingerprint(
        {**request, "previous_response_id": "resp_x"}, fp, previous_response_id="resp_1"
    )
    assert plan.previous_response_id == "resp_x"
    assert plan.reason == "set by the caller"


def test_the_digest_returned_with_a_delta_extends_to_the_next_fingerprint() -> None:
    request = {**BASE, "input": [*USER, CALL_REPLAYED, *RESULT]}
    plan, digest = plan_from_fingerprint(
        request, fingerprint(PREVIOUS, [CALL]), previous_response_id="resp_1"
    )
    assert plan.is_delta
    assert digest is not None
    answer = [
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "18C"}],
        }
    ]
    reused = fingerprint(request, answer, input_digest=digest)
    assert reused == fingerprint(request, answer)
    assert digest.count == len(request["input"])  # the reused digest was not changed


def test_item_digest_ignores_key_order_and_sees_item_boundaries() -> None:
    one = ItemDigest().update([{"a": 1, "b": "x"}]).hexdigest()
    same = ItemDigest().update([{"b": "x", "a": 1}]).hexdigest()
    assert one == same
    assert ItemDigest().update(["ab"]).hexdigest() != ItemDigest().update(["a", "b"]).hexdigest()
    assert (
        ItemDigest().update([{"t": "é"}]).hexdigest()
        != ItemDigest().update([{"t": "e"}]).hexdigest()
    )
    base = ItemDigest().update([1, 2])
    fork = base.copy().update([3])
    assert base.count == 2
    assert fork.count == 3
    assert fork.hexdigest() == ItemDigest().update([1, 2, 3]).hexdigest()


# -- records ----------------------------------------------------------------------------------


def test_a_record_round_trips_through_json_and_damage_reads_as_absent() -> None:
    record = ChainRecord("resp_1", False, "gpt-x", Fingerprint("s", "p", 3), scope="abc")
    again = ChainRecord.from_json(record.to_json().encode())
    assert again == record
    for bad in ["", "{", "[]", '{"v": 2}', record.to_json().replace('"length":3', '"length":"3"')]:
        assert ChainRecord.from_json(bad) is None, bad


# -- MemoryChainStore ---------------------------------------------------------------------------


def record(number: int = 1) -> ChainRecord:
    return ChainRecord(f"resp_{number}", True, "m", Fingerprint("s", "p", number))


def test_memory_store_keeps_replaces_and_forgets() -> None:
    store = MemoryChainStore()
    assert isinstance(store, ChainStore)
    assert store.get("a") is None
    store.put("a", record(1))
    store.put("a", record(2))
    got = store.get("a")
    assert got is not None
    assert got.response_id == "resp_2"
    store.delete("a")
    store.delete("a")
    assert store.get("a") is None
    assert len(store) == 0


def test_memory_store_drops_the_least_recently_used_past_max_entries() -> None:
    store = MemoryChainStore(max_entries=2)
    store.put("a", record(1))
    store.put("b", record(2))
    assert store.get("a") is not None  # a is now the most recently used
    store.put("c", record(3))
    assert store.get("b") is None
    assert store.get("a") is not None
    assert store.get("c") is not None


def test_memory_store_ttl() -> None:
    store = MemoryChainStore(ttl=0.05)
    store.put("a", record())
    assert wait_for(lambda: store.get("a") is None, 5)
    with pytest.raises(ValueError, match="ttl"):
        MemoryChainStore(ttl=0)
    with pytest.raises(ValueError, match="max_entries"):
        MemoryChainStore(max_entries=0)


# -- the outage guard -----------------------------------------------------------------------------


class FlakyStore(MemoryChainStore):
    """A store of our own that can be switched off (as a dead server would be)."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = False
        self.calls = 0

    def get(self, session_id: str) -> ChainRecord | None:
        self.calls += 1
        if self.broken:
            raise ChainStoreError("down")
        return super().get(session_id)

    def put(self, session_id: str, record: ChainRecord) -> None:
        self.calls += 1
        if self.broken:
            raise OSError("down")
        super().put(session_id, record)


def test_a_failing_store_is_logged_once_per_outage_and_left_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore()
    guard = GuardedStore(store, retry_interval=3600)
    assert guard.put("a", record())
    assert guard.get("a")[0]
    store.broken = True
    with caplog.at_level(logging.INFO, logger="openai_ws"):
        assert guard.get("a") == (False, None)
        calls = store.calls
        for _ in range(5):  # within the retry interval: not even asked
            assert guard.get("a") == (False, None)
            assert not guard.put("a", record())
        assert store.calls == calls
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "chain store" in warnings[0].getMessage()
    assert guard.down


def test_the_guard_tries_again_after_its_interval_and_logs_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore()
    guard = GuardedStore(store, retry_interval=0.0)
    store.broken = True
    with caplog.at_level(logging.INFO, logger="openai_ws"):
        assert not guard.put("a", record())
        assert not guard.put("a", record())  # the same outage: no second warning
        store.broken = False
        assert guard.put("a", record())
        store.broken = True
        assert guard.get("a") == (False, None)  # a new outage: a new warning
    levels = [r.levelno for r in caplog.records]
    assert levels.count(logging.WARNING) == 2
    assert levels.count(logging.INFO) == 1
    assert not GuardedStore(MemoryChainStore()).down


# -- the client's options -------------------------------------------------------------------


def test_client_validates_its_store_and_socket_budget() -> None:
    with pytest.raises(ConfigurationError, match="max_sockets"):
        Client(api_key="sk-test", max_sockets=0)
    with pytest.raises(ConfigurationError, match="chain_store"):
        Client(api_key="sk-test", chain_store=object())  # type: ignore[arg-type]
    shared = MemoryChainStore()
    with Client(api_key="sk-test", chain_store=shared) as one, Client(api_key="sk-test") as two:
        assert one.chain_store is shared
        assert isinstance(two.chain_store, MemoryChainStore)
        assert two.chain_store is not shared


# -- RedisChainStore ------------------------------------------------------------------------


def test_redis_store_round_trip_prefix_and_ttl(redis_server: RedisServer) -> None:
    store = RedisChainStore(redis_server.url, prefix="t1:", ttl=120)
    raw = redis_server.client()
    try:
        assert store.get("chat-1") is None
        store.put("chat-1", record(1))
        store.put("chat-1", record(2))  # the last writer wins
        got = store.get("chat-1")
        assert got is not None
        assert got.response_id == "resp_2"
        assert [k.decode() for k in raw.keys("*")] == ["t1:chain:chat-1"]
        assert 0 < raw.ttl("t1:chain:chat-1") <= 120
        raw.set("t1:chain:chat-2", b"not json")
        assert store.get("chat-2") is None  # damaged: absent, never an error
        store.delete("chat-1")
        assert store.get("chat-1") is None
    finally:
        store.close()
        raw.close()


def test_redis_store_takes_a_client_you_have(redis_server: RedisServer) -> None:
    mine = redis_server.client()
    try:
        store = RedisChainStore(mine, ttl=60)
        store.put("x", record())
        assert mine.exists("openai-ws:chain:x")
        store.close()  # not ours to close
        assert mine.ping()
    finally:
        mine.close()
    with pytest.raises(TypeError):
        RedisChainStore(42)
    with pytest.raises(ValueError, match="ttl"):
        RedisChainStore(mine, ttl=0)


def test_redis_keys_expire_after_ttl(redis_server: RedisServer) -> None:
    store = RedisChainStore(redis_server.url, ttl=1)
    try:
        store.put("short", record())
        assert store.get("short") is not None
        assert wait_for(lambda: store.get("short") is None, 10)
    finally:
        store.close()


def test_an_unreachable_redis_raises_chain_store_error_without_the_password() -> None:
    store = RedisChainStore(f"redis://:hunter2secret@127.0.0.1:{free_port()}/0")
    try:
        assert "hunter2secret" not in repr(store)
        with pytest.raises(ChainStoreError) as caught:
            store.get("a")
        assert "hunter2secret" not in str(caught.value)
        with pytest.raises(ChainStoreError):
            store.put("a", record())
    finally:
        store.close()


def test_without_redis_py_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=r"the redis extra installs: .*\.\[redis\]"):
        RedisChainStore("redis://127.0.0.1:1/0")
