"""Session: the turn lock, chaining through the Transport seam, warm-up, discard."""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Mapping
from typing import Any

from openai_ws.chain import fingerprint
from openai_ws.convert import output_items_to_input_items
from openai_ws.exceptions import ConcurrencyError, ConnectionClosed
from openai_ws.sessions import Session, SessionConfig, freeze_headers
from openai_ws.stores import GuardedStore, MemoryChainStore
from openai_ws.testing import FakeResponsesServer
from openai_ws.transports import SSETransport
from openai_ws.transports.base import Deadline, ResponseStream, Transport
from tests.conftest import KEY, TIME_FACTOR


def config(server: FakeResponsesServer) -> SessionConfig:
    return SessionConfig(api_key=KEY, key_id="k", websocket_url=server.ws_url)


class NoHTTP(Transport):
    """A transport for the sessions that never go to HTTP in these tests."""

    kind = "sse"

    def open(
        self,
        payload: Mapping[str, Any],
        deadline: Deadline,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> ResponseStream:
        raise AssertionError("no HTTP in this test")

    def close(self) -> None:
        pass

    def discard(self) -> None:
        pass


def session(server: FakeResponsesServer, session_id: str | None = "s") -> Session:
    http = NoHTTP()
    return Session(session_id, config(server), http=lambda: http)


REQUEST = {"model": "m", "input": [{"type": "message", "role": "user", "content": "hi"}]}


def run_turn(s: Session, request: dict[str, Any]) -> dict[str, Any]:
    """One turn over the session's socket, planned by the session; returns the completed
    response object."""
    deadline = Deadline(10)
    s.begin_turn(deadline, lambda: None)
    try:
        transport = s.transport("websocket")
        transport.prepare(deadline)
        plan = s.plan(request, transport)
        stream = transport.open(plan.payload, deadline)
        events = list(stream)
        response = events[-1].raw["response"]
        s.remember(request, response)
        return dict(response)
    finally:
        s.end_turn()


# -- turns ------------------------------------------------------------------------------------


def test_turns_of_one_session_never_overlap(server: FakeResponsesServer) -> None:
    s = session(server)
    s.begin_turn(Deadline(10), lambda: None)
    entered = threading.Event()

    def second() -> None:
        s.begin_turn(Deadline(10), lambda: None)
        entered.set()
        s.end_turn()

    thread = threading.Thread(target=second)
    thread.start()
    assert not entered.wait(0.2)  # waits for the first turn to end
    assert s.busy
    s.end_turn()
    assert entered.wait(5 * TIME_FACTOR)
    thread.join()
    assert s.turns == 2
    s.close()


def test_a_turn_left_open_in_the_same_thread_is_abandoned_by_the_next(
    server: FakeResponsesServer,
) -> None:
    s = session(server)
    abandoned: list[str] = []

    def abandon() -> None:
        abandoned.append("first")
        s.end_turn()

    s.begin_turn(Deadline(10), abandon)
    s.begin_turn(Deadline(10), lambda: None)  # same thread: no deadlock, no error
    assert abandoned == ["first"]
    s.end_turn()
    assert not s.busy
    s.close()


def test_waiting_for_another_threads_turn_is_bounded_and_cancellable(
    server: FakeResponsesServer,
) -> None:
    s = session(server)
    s.begin_turn(Deadline(10), lambda: None)
    errors: list[BaseException] = []

    def wait(deadline: Deadline) -> None:
        try:
            s.begin_turn(deadline, lambda: None)
        except BaseException as exc:
            errors.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=wait, args=(Deadline(0.2),))
    thread.start()
    thread.join(5 * TIME_FACTOR)
    assert isinstance(errors[0], ConcurrencyError)
    assert time.monotonic() - started < 2 * TIME_FACTOR

    deadline = Deadline(30)
    thread = threading.Thread(target=wait, args=(deadline,))
    thread.start()
    time.sleep(0.1)
    deadline.cancel()
    thread.join(5 * TIME_FACTOR)
    assert isinstance(errors[1], ConnectionClosed)
    s.end_turn()
    s.close()


# -- chaining through the seam -------------------------------------------------------------------


def test_the_next_turn_chains_from_the_sockets_cache(server: FakeResponsesServer) -> None:
    s = session(server)
    first = run_turn(s, REQUEST)
    assert s.chain.response_id == first["id"]
    continued = {
        **REQUEST,
        "input": [
            *REQUEST["input"],
            *[{"type": "message", "role": "assistant", "content": "x"}],
        ],
    }
    transport = s.transport("websocket")
    assert transport.cached_response_id == first["id"]
    plan = s.plan(continued, transport)
    assert plan.payload.get("previous_response_id") is None  # "x" is not what it answered
    s.forget()
    assert s.chain.response_id is None
    s.close()


def test_over_http_only_a_stored_chain_is_continued(server: FakeResponsesServer) -> None:
    s = session(server)
    http = SSETransport(server.http_base_url, api_key=KEY)
    response = {"id": "resp_1", "status": "completed", "output": []}
    s.remember({**REQUEST, "store": False}, response)
    assert "previous_response_id" not in s.plan({**REQUEST, "store": False}, http).payload
    s.remember({**REQUEST, "store": True}, response)
    assert s.chain.stored
    follow_up = {"type": "message", "role": "user", "content": "and then?"}
    plan = s.plan({**REQUEST, "store": True, "input": [*REQUEST["input"], follow_up]}, http)
    assert plan.payload["previous_response_id"] == "resp_1"
    assert plan.payload["input"] == [follow_up]
    http.close()
    s.close()


def test_warm_up_chains_the_first_turn(server: FakeResponsesServer) -> None:
    s = session(server)
    warm_id = s.warm_up({**REQUEST, "instructions": "terse"}, timeout=10)
    assert s.chain.response_id == warm_id
    assert s.chain.request is not None
    assert s.chain.request["generate"] is False
    assert server.requests[-1].body.get("generate") is False
    s.close()


def test_after_discard_the_next_turn_opens_its_own_socket(server: FakeResponsesServer) -> None:
    # (that discard does no I/O the parent would see is shown across a real fork: test_fork.py)
    s = session(server)
    run_turn(s, REQUEST)
    connection = s.connection()
    s.discard()
    assert s.chain.response_id is not None  # the chain is the session's, not the socket's
    assert s.connection() is not connection
    assert s.transport("websocket").cached_response_id is None  # a new socket: empty cache
    run_turn(s, REQUEST)
    assert server.stats.connections == 2
    s.close()


def test_freeze_headers_merges_case_insensitively() -> None:
    merged = freeze_headers({"X-A": "1", "x-b": "2"}, [("x-a", "3")], None)
    assert dict(merged) == {"x-a": "3", "x-b": "2"}


# -- the record of an in-process store --------------------------------------------------------


def _stored_session(server: FakeResponsesServer, store: Any) -> Session:
    http = NoHTTP()
    return Session("s", config(server), http=lambda: http, store=GuardedStore(store))


def _continued(response: dict[str, Any]) -> dict[str, Any]:
    """REQUEST, continued by its answer and one more user message."""
    answer = output_items_to_input_items(response["output"])
    follow_up = {"type": "message", "role": "user", "content": "and then?"}
    return {**REQUEST, "input": [*REQUEST["input"], *answer, follow_up]}


def test_a_memory_record_is_fingerprinted_only_when_another_session_reads_it(
    server: FakeResponsesServer,
) -> None:
    store = MemoryChainStore()
    s = _stored_session(server, store)
    response = run_turn(s, REQUEST)
    record = store.get("s")
    assert record is not None
    assert record.deferred  # its own session plans without it
    assert record.fingerprint == fingerprint(REQUEST, response["output"])  # read: computed
    assert not record.deferred
    # the session's own plan, from its memory, is the plan the record's digests give
    transport = s.transport("websocket")
    request = _continued(response)
    own = s.plan(request, transport)
    assert own.payload["previous_response_id"] == response["id"]
    assert own.payload["input"] == request["input"][-1:]
    other = _stored_session(server, store)  # another session, the same store: the record
    assert other.plan(request, transport).payload == own.payload
    s.close()
    other.close()


def test_a_closed_session_leaves_a_computed_record(server: FakeResponsesServer) -> None:
    store = MemoryChainStore()
    s = _stored_session(server, store)
    response = run_turn(s, REQUEST)
    record = store.get("s")
    assert record is not None
    assert record.deferred
    s.close()  # the record outlives the session: it must not hold the request any more
    assert not record.deferred
    assert record.fingerprint == fingerprint(REQUEST, response["output"])
    assert pickle.loads(pickle.dumps(record)) == record


def test_a_store_of_another_kind_gets_the_fingerprint_at_once(server: FakeResponsesServer) -> None:
    class Kept(MemoryChainStore):
        """Any store but the in-process one may serialise what it is given."""

    store = Kept()
    s = _stored_session(server, store)
    run_turn(s, REQUEST)
    record = store.get("s")
    assert record is not None
    assert not record.deferred
    s.close()
