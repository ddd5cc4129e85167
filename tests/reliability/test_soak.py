"""The fault-injection soak: agent loops on concurrent sessions, with faults from a seeded plan.

Every session runs an agent loop in its own thread against one emulator. Before each request
(a "step") the session draws a fault, or none, from its own seeded random generator and injects
it so that it hits that request only: request faults match the step's tag in ``metadata``,
refused upgrades match the session's handshake header (after the session is released, so the
step opens a new socket). Every step is checked:

* the stream ends with exactly one ``done`` or ``error``, as its last event, within its deadline;
* the text and tool-call arguments the caller saw in deltas are exactly the final message's;
* a ``done`` is what the soak model produces for that step;
* an ``error`` is allowed only where the SDK must not recover: output had already reached the
  caller, or the transport was forced and the fault rules it out (see ``FAILS_BEFORE_OUTPUT``);
* no request carried ``previous_response_id`` together with history the server already held;
* after the loop every session is released and the thread count is back to its baseline.

``pytest tests/reliability --soak 20`` runs twenty times as many turns; ``--soak-seed`` changes
the plan. The totals are printed in the run's summary.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import pytest

from openai_ws import Client, Context, StreamOptions, Tool, ToolResultMessage, UserMessage
from openai_ws.events import Done, Error, Start, StreamEvent, TextDelta, ToolCallDelta, ToolCallEnd
from openai_ws.testing import (
    BadFrame,
    CloseSocket,
    CutBody,
    FakeResponsesServer,
    FunctionCall,
    LatencyModel,
    ModelRequest,
    RefuseUpgrade,
    Rejection,
    Stall,
    Text,
    Turn,
)
from tests.conftest import TIME_FACTOR, report, wait_for

KEY = "sk-soak-4c2f9e1d7b3a5068"
# the client's first-event and idle timeout (a Stall lasts 2.5 times longer): generous, as the
# emulator and every client thread share one interpreter on what may be a two-core machine
TIMEOUT = 1.0
STEP_DEADLINE = 15.0 * TIME_FACTOR  # no step may take longer than this
MODES = ("auto", "websocket", "sse")
SESSIONS_PER_MODE = 2
TURNS = 16  # user turns per session, times --soak; every third one calls a tool first
FAULT_RATE = 0.6
MAX_EVENT = 18  # mid-stream faults strike after 0..MAX_EVENT-1 events of the reply
ATTEMPTS_PER_TURN = 25  # a turn may fail this many times in a row (only ever from faults)

LOOKUP = Tool(
    "lookup",
    "Look a record up",
    {"type": "object", "properties": {"session": {"type": "string"}, "turn": {"type": "integer"}}},
)


def tool_output(session: str, turn: int) -> str:
    return f"record {session}-{turn}"


def answer(session: str, turn: int, tool_result: str | None) -> str:
    words = " ".join(f"w{(turn * 7 + i * 13) % 97}" for i in range(10))
    return f"Answer {session}/{turn}: {words}" + (f" using {tool_result}." if tool_result else ".")


class SoakModel:
    """``soak <session> <turn>``: every third turn calls ``lookup`` once, then answers; the
    answer is :func:`answer` of the tool's result (read back from the context)."""

    def __call__(self, request: ModelRequest) -> Turn:
        words = request.last_user_text.split()
        if len(words) != 3 or words[0] != "soak":
            return Turn((Text("ok"),))
        session, turn = words[1], int(words[2])
        start = request.last_user_index or 0
        results = [
            item.get("output")
            for item in request.context[start + 1 :]
            if item.get("type") == "function_call_output"
        ]
        if turn % 3 == 0 and not results:
            return Turn((FunctionCall("lookup", {"session": session, "turn": turn}),))
        result = results[0] if results and isinstance(results[0], str) else None
        return Turn((Text(answer(session, turn, result)),))


# -- the fault plan -----------------------------------------------------------------------------

#: fault kind -> (the modes it applies to, whether it strikes mid-stream)
KINDS: dict[str, tuple[tuple[str, ...], bool]] = {
    "refuse_426": (("auto", "websocket"), False),
    "refuse_401": (("auto", "websocket"), False),
    "refuse_500": (("auto", "websocket"), False),
    "close_1006": (MODES, True),
    "close_1011": (MODES, True),
    "close_1008": (MODES, True),
    "non_json_frame": (MODES, True),
    "binary_frame": (MODES, True),
    "stall": (MODES, True),
    "rate_limit_429": (MODES, False),
    "server_error_500": (MODES, False),
    "server_error_503": (MODES, False),
    "previous_response_not_found": (MODES, False),
    "connection_limit": (("auto", "websocket"), False),
    "sse_cut_mid_event": (MODES, True),
}

#: Faults after which an error is right even though no output reached the caller: a forced
#: transport that the fault rules out; a handshake refused for the key (HTTP would send the
#: same key: an AuthenticationError, never a fallback); a stall longer than the turn's
#: timeout, which bounds the whole turn, retries and fallback included. In ``auto`` every
#: other fault before output must be recovered.
FAILS_BEFORE_OUTPUT: dict[str, set[str]] = {
    "auto": {"refuse_401", "stall"},
    "websocket": {
        "refuse_426",
        "refuse_401",
        "refuse_500",
        "close_1008",
        "non_json_frame",
        "binary_frame",
        "stall",
    },
    "sse": {"non_json_frame", "binary_frame", "stall"},
}


def request_fault(kind: str, after: int) -> Any:
    """The emulator fault for a request-level *kind*, striking after *after* events."""
    if kind.startswith("close_"):
        return CloseSocket(after_events=after, code=int(kind.split("_")[1]), reason="soak")
    if kind == "non_json_frame":
        return BadFrame(after_events=after, kind="non_json")
    if kind == "binary_frame":
        return BadFrame(after_events=after, kind="binary")
    if kind == "stall":
        return Stall(seconds=TIMEOUT * 2.5, after_events=after)
    if kind == "sse_cut_mid_event":
        return CutBody(after_events=after)
    if kind == "rate_limit_429":
        return Rejection(
            status=429,
            code="rate_limit_exceeded",
            type="requests",
            message="Rate limit reached.",
            headers={"retry-after": "0.05"},
        )
    if kind.startswith("server_error_"):
        status = int(kind.rsplit("_", 1)[1])
        return Rejection(status=status, code="server_error", type="server_error")
    if kind == "previous_response_not_found":
        return Rejection(
            status=400, code="previous_response_not_found", param="previous_response_id"
        )
    if kind == "connection_limit":
        return Rejection(status=400, code="websocket_connection_limit_reached")
    raise AssertionError(kind)


@attrs.define
class Totals:
    steps: int = 0
    turns: int = 0
    planned: collections.Counter[str] = attrs.field(factory=collections.Counter)
    struck: collections.Counter[str] = attrs.field(factory=collections.Counter)
    outcomes: collections.Counter[str] = attrs.field(factory=collections.Counter)
    violations: list[str] = attrs.field(factory=list)
    lock: threading.Lock = attrs.field(factory=threading.Lock)
    slowest: float = 0.0

    def merge(self, other: Totals) -> None:
        with self.lock:
            self.steps += other.steps
            self.turns += other.turns
            self.planned.update(other.planned)
            self.struck.update(other.struck)
            self.outcomes.update(other.outcomes)
            self.violations.extend(other.violations)
            self.slowest = max(self.slowest, other.slowest)


# -- one session --------------------------------------------------------------------------------


@attrs.define
class Step:
    """What one stream showed the caller."""

    events: list[StreamEvent]
    seconds: float
    transport: str | None
    attempts: list[str]

    @property
    def last(self) -> StreamEvent:
        return self.events[-1]


class SoakSession:
    def __init__(
        self,
        client: Client,
        server: FakeResponsesServer,
        mode: str,
        number: int,
        seed: int,
        turns: int,
    ) -> None:
        self.client, self.server, self.mode = client, server, mode
        self.id = f"{mode}{number}"
        self.rng = random.Random(f"{seed}:{self.id}")
        self.turns = turns
        self.totals = Totals()
        self.context = Context(system_prompt="Soak.", tools=[LOOKUP])
        self.step = 0
        self.kinds = [k for k, (modes, _) in KINDS.items() if mode in modes]
        self.trace: list[str] = []  # the last steps, for the violations' messages
        self.fault: Any = None
        self.deck: list[str] = []  # the kinds still to draw: each is used once per round
        self.struck_now = False
        # a mid-stream fault that struck after the previous step's terminal event (a close or a
        # bad frame sent between responses) may act on this step's request, which races it
        self.spill: str | None = None

    def violation(self, text: str) -> None:
        before = "; ".join(self.trace[-3:])
        self.totals.violations.append(f"{self.id} step {self.step}: {text} [after: {before}]")

    def run(self) -> None:
        try:
            for turn in range(self.turns):
                self.totals.turns += 1
                self.context.messages.append(UserMessage(f"soak {self.id} {turn}"))
                self.finish_turn(turn)
        except Exception as exc:  # anything escaping a stream is itself a violation
            self.violation(f"{type(exc).__name__} escaped: {exc}")
        finally:
            self.client.release_session(self.id)

    def finish_turn(self, turn: int) -> None:
        """Stream steps until the turn is answered (a failed step is tried again)."""
        tool_result: str | None = None
        for _ in range(ATTEMPTS_PER_TURN):
            kind = self.plan()
            step = self.stream()
            outcome = self.check(step, kind, turn, tool_result)
            self.totals.outcomes[outcome] += 1
            self.trace.append(
                f"{self.step}: {self.fault} {step.attempts} {outcome} in {step.seconds:.2f}s"
            )
            last = step.last
            late = kind is not None and KINDS[kind][1] and self.struck_now
            self.spill = (
                kind if late and isinstance(last, Done) and len(step.attempts) == 1 else None
            )
            if not isinstance(last, Done):
                continue  # the caller tries the step again, as an agent loop would
            self.context.messages.append(last.message)
            if last.reason != "toolUse":
                return
            call = last.message.tool_calls[0]
            tool_result = tool_output(self.id, turn)
            self.context.messages.append(ToolResultMessage(call.id, call.name, tool_result))
        self.violation(f"{ATTEMPTS_PER_TURN} steps did not answer the turn")

    def plan(self) -> str | None:
        """Draw this step's fault and inject it; returns its kind (None: no fault)."""
        self.step += 1
        self.fault = None
        self.struck_now = False
        if self.rng.random() >= FAULT_RATE:
            return None
        if not self.deck:
            self.deck = self.rng.sample(self.kinds, len(self.kinds))
        kind = self.deck.pop()
        after = self.rng.randrange(MAX_EVENT)
        self.totals.planned[kind] += 1
        if kind.startswith("refuse_"):
            self.client.release_session(self.id)  # the step opens a new socket
            self.fault = RefuseUpgrade(int(kind.split("_")[1]))
            self.server.inject(
                self.fault,
                match=self._strike(kind, lambda h: h.get("x-soak-session") == self.id),
            )
            return kind
        tag = f"{self.id}:{self.step}"
        self.fault = request_fault(kind, after)
        self.server.inject(
            self.fault,
            transport="websocket" if kind == "connection_limit" else None,
            match=self._strike(kind, lambda body: (body.get("metadata") or {}).get("soak") == tag),
        )
        return kind

    def _strike(
        self, kind: str, test: Callable[[Mapping[str, Any]], bool]
    ) -> Callable[[Mapping[str, Any]], bool]:
        def match(value: Mapping[str, Any]) -> bool:
            hit = test(value)
            if hit:
                self.totals.struck[kind] += 1
                self.struck_now = True
            return hit

        return match

    def stream(self) -> Step:
        options = StreamOptions(
            metadata={"soak": f"{self.id}:{self.step}"},
            headers={"x-soak-session": self.id},
            timeout=TIMEOUT,
        )
        started = time.monotonic()
        stream = self.client.stream(
            "gpt-soak", self.context, session_id=self.id, transport=self.mode, options=options
        )
        events = list(stream)
        seconds = time.monotonic() - started
        self.totals.steps += 1
        self.totals.slowest = max(self.totals.slowest, seconds)
        return Step(events, seconds, stream.transport, list(stream.attempts))

    def check(self, step: Step, kind: str | None, turn: int, tool_result: str | None) -> str:
        """Check the invariants on one step; returns its outcome's name."""
        events = step.events
        terminals = [e for e in events if isinstance(e, (Done, Error))]
        if len(terminals) != 1 or terminals[0] is not events[-1]:
            self.violation(f"{len(terminals)} terminal events, last {events[-1].type}")
            return "broken"
        if step.seconds > STEP_DEADLINE:
            self.violation(f"took {step.seconds:.1f}s (deadline {STEP_DEADLINE}s)")
        output = [e for e in events if not isinstance(e, (Start, Done, Error))]
        last = events[-1]
        message = last.message if isinstance(last, Done) else last.error  # type: ignore[attr-defined]
        seen = "".join(e.delta for e in events if isinstance(e, TextDelta))
        if seen != message.text:
            self.violation(f"deltas {seen!r} != final text {message.text!r}")
        ends = [e.tool_call for e in events if isinstance(e, ToolCallEnd)]
        arguments = "".join(e.delta for e in events if isinstance(e, ToolCallDelta))
        if isinstance(last, Done):
            self.check_done(last, ends, arguments, turn, tool_result)
            retried = len(step.attempts) > 1
            if step.transport == "sse" and self.mode != "sse":
                return "done over HTTP after falling back"
            return "done after a retry" if retried else "done"
        assert isinstance(last, Error)
        name = type(last.exception).__name__
        causes = [k for k in (kind, self.spill) if k is not None]
        if not causes:
            self.violation(f"error without a fault: {name}: {last.error.error_message}")
        elif output:
            if not any(KINDS[k][1] for k in causes):
                self.violation(f"{causes} failed after output ({name})")
            return f"error after output ({name})"
        elif len(causes) == 2 and self.mode != "auto":
            # two faults on one request: a forced transport has one retry for both
            return f"error before output ({name}), two faults on one request"
        elif not any(k in FAILS_BEFORE_OUTPUT[self.carrier(step)] for k in causes):
            self.violation(f"{causes} not recovered in {self.mode} mode: {name}: {step.attempts}")
        if kind is None:
            return f"error before output ({name}), from the previous step's late fault"
        return f"error before output ({name})"

    def carrier(self, step: Step) -> str:
        """The rules that applied: ``auto`` on HTTP (in its cool-down) is as ``sse``."""
        if self.mode == "auto" and step.attempts[0].startswith("sse"):
            return "sse"
        return self.mode

    def check_done(
        self,
        done: Done,
        ends: list[Any],
        arguments: str,
        turn: int,
        tool_result: str | None,
    ) -> None:
        message = done.message
        if done.reason == "toolUse":
            calls = message.tool_calls
            expected = {"session": self.id, "turn": turn}
            if tool_result is not None or turn % 3:
                self.violation("a tool call where an answer was due")
            elif len(calls) != 1 or calls[0].name != "lookup" or calls[0].arguments != expected:
                self.violation(f"wrong tool call {calls}")
            elif ends != calls or calls[0].raw_arguments != arguments:
                self.violation(f"tool call deltas {arguments!r} != {calls[0].raw_arguments!r}")
        elif message.text != answer(self.id, turn, tool_result):
            self.violation(f"answer {message.text!r} != {answer(self.id, turn, tool_result)!r}")


# -- the test -----------------------------------------------------------------------------------


@pytest.fixture
def soak_server() -> Iterator[FakeResponsesServer]:
    with FakeResponsesServer(model=SoakModel(), latency=LatencyModel.instant(), api_key=KEY) as s:
        yield s


def test_fault_injection_soak(
    soak_server: FakeResponsesServer, request: pytest.FixtureRequest
) -> None:
    scale: int = request.config.getoption("--soak")
    seed: int = request.config.getoption("--soak-seed")
    server = soak_server
    baseline = set(threading.enumerate())
    totals = Totals()
    started = time.monotonic()
    with Client(
        api_key=KEY,
        base_url=server.http_base_url,
        fallback_cooldown=0.2,
        connect_timeout=5.0,
    ) as client:
        sessions = [
            SoakSession(client, server, mode, number, seed, TURNS * scale)
            for mode in MODES
            for number in range(SESSIONS_PER_MODE)
        ]
        threads = [
            threading.Thread(target=s.run, name=f"soak-{s.id}", daemon=True) for s in sessions
        ]
        for thread in threads:
            thread.start()
        budget = time.monotonic() + 60 * scale * TIME_FACTOR
        for thread in threads:
            thread.join(max(0.0, budget - time.monotonic()))
        hung = [t.name for t in threads if t.is_alive()]
        assert not hung, f"sessions still running after the budget: {hung}"
        for session in sessions:
            totals.merge(session.totals)
        assert client.session_ids == []

    def threads_left() -> list[str]:
        return [t.name for t in threading.enumerate() if t not in baseline and t.is_alive()]

    wait_for(lambda: not threads_left())
    left = threads_left()
    stats = server.stats

    report(
        f"soak (seed {seed}, x{scale}): {len(sessions)} sessions in {', '.join(MODES)} modes, "
        f"{totals.turns} user turns, {totals.steps} streams in "
        f"{time.monotonic() - started:.1f}s (slowest step {totals.slowest:.2f}s)"
    )
    report("  faults planned / struck: " + _counts(totals.planned, totals.struck))
    report("  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.outcomes.items())))
    report(
        f"  server: {stats.requests} requests, {stats.connections} connections, "
        f"duplicate history {stats.duplicate_history}; threads left {len(left)}; "
        f"violations {len(totals.violations)}"
    )
    for line in totals.violations[:20]:
        report(f"  VIOLATION {line}")

    assert totals.violations == []
    assert stats.duplicate_history == 0, "a request re-sent history the server already held"
    assert not left, f"threads left after every session was released: {left}"
    assert sum(totals.struck.values()) >= totals.steps * FAULT_RATE / 2, "too few faults struck"
    assert set(totals.struck) == set(KINDS), (
        f"kinds never struck: {set(KINDS) - set(totals.struck)}"
    )


def _counts(planned: Mapping[str, int], struck: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {planned.get(k, 0)}/{struck.get(k, 0)}" for k in sorted(KINDS))
