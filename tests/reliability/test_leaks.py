"""Memory and leaks: 10,000 turns in one process, idle expiry, and Client.close().

The emulator runs in its own process (``openai_ws._bench.start_emulator``), so this process's memory
is the SDK's alone. ``--soak N`` runs N times as many turns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from openai_ws import Client, Context, ToolResultMessage, UserMessage
from openai_ws._bench import ServerProcess, start_emulator
from openai_ws._bench.competitors import TOOL, tool_output
from openai_ws.events import Done
from openai_ws.messages import Tool
from tests.conftest import TIME_FACTOR, report, socket_fds, wait_for

TURNS = 10_000
TOOL_TURNS = 4  # each conversation: four tool calls and an answer, i.e. five streams
WORKERS = 4
GROWTH_LIMIT_MIB = 24.0


def rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.fixture(scope="module")
def emulator() -> Iterator[ServerProcess]:
    with start_emulator("instant") as running:
        yield running


def new_client(emulator: ServerProcess, **kwargs: object) -> Client:
    urls = emulator.urls
    return Client(api_key=urls.api_key, base_url=urls.http_base_url, timeout=60, **kwargs)  # type: ignore[arg-type]


LOOKUP = Tool("lookup", TOOL["description"], TOOL["parameters"])  # type: ignore[arg-type]


def conversation(client: Client, session_id: str, transport: str) -> int:
    """One agent loop (``loop N`` for the emulator's bench model); returns the streams used."""
    context = Context(messages=[UserMessage(f"loop {TOOL_TURNS}")], tools=[LOOKUP])
    streams = 0
    while True:
        events = list(client.stream("m", context, session_id=session_id, transport=transport))
        last = events[-1]
        streams += 1
        assert isinstance(last, Done), f"{session_id}: {last}"
        context.messages.append(last.message)
        if last.reason != "toolUse":
            assert last.message.text == f"Finished {TOOL_TURNS} steps."
            return streams
        call = last.message.tool_calls[0]
        step = int(call.arguments["step"])
        context.messages.append(ToolResultMessage(call.id, call.name, tool_output(step)))


def test_ten_thousand_turns_keep_memory_bounded(
    emulator: ServerProcess, request: pytest.FixtureRequest
) -> None:
    total = TURNS * request.config.getoption("--soak")
    threads_before = set(threading.enumerate())
    sockets_before = socket_fds()
    client = new_client(emulator)
    done = 0
    samples: list[tuple[int, int]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        nonlocal done
        index = 0
        try:
            while True:
                with lock:
                    if done >= total:
                        return
                index += 1
                session = f"leak-{number}-{index}"
                transport = "sse" if index % 5 == 0 else "websocket"
                streams = conversation(client, session, transport)
                assert client.release_session(session)
                with lock:
                    done += streams
                    if number == 0:
                        samples.append((done, rss_kib()))
        except BaseException as exc:
            errors.append(exc)

    started = time.monotonic()
    workers = [threading.Thread(target=worker, args=(n,)) for n in range(WORKERS)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(600 * TIME_FACTOR)
    assert not any(t.is_alive() for t in workers), "the turns did not finish in 10 minutes"
    assert not errors, errors[0]
    seconds = time.monotonic() - started
    client.close()

    warm = next(rss for turns, rss in samples if turns >= total // 10)
    end = samples[-1][1]
    peak = max(rss for _, rss in samples)
    growth = (end - warm) / 1024
    report(
        f"leaks: {done} turns ({WORKERS} threads, {done // (TOOL_TURNS + 1)} conversations, "
        f"one in five over HTTP) in {seconds:.1f}s; RSS after the first tenth "
        f"{warm / 1024:.1f} MiB, at the end {end / 1024:.1f} MiB (growth {growth:+.1f} MiB, "
        f"limit {GROWTH_LIMIT_MIB} MiB), peak {peak / 1024:.1f} MiB"
    )
    assert growth < GROWTH_LIMIT_MIB
    assert wait_for(lambda: not (socket_fds() - sockets_before)), socket_fds() - sockets_before
    assert wait_for(lambda: not (set(threading.enumerate()) - threads_before))


def test_idle_sessions_expire_with_their_socket_and_thread(emulator: ServerProcess) -> None:
    idle = 0.5
    threads_before = set(threading.enumerate())
    sockets_before = socket_fds()
    with new_client(emulator, session_idle_timeout=idle) as client:
        readers: set[threading.Thread] = set()
        for n in range(20):
            assert conversation(client, f"idle-{n}", "websocket") == TOOL_TURNS + 1
            mine = f"session-idle-{n}-reader-"
            readers.update(t for t in threading.enumerate() if mine in t.name)
        assert len(readers) == 20  # each session had its own socket and reader thread
        time.sleep(idle + 0.1)  # the idleness under test: every session is now past the limit
        assert not client.has_session("idle-19")  # using the client sweeps the idle ones
        assert client.session_ids == []
        assert wait_for(lambda: not any(t.is_alive() for t in readers))
        assert wait_for(lambda: not (socket_fds() - sockets_before))
        # a session in use is kept
        conversation(client, "kept", "websocket")
        assert client.session_ids == ["kept"]
        assert len(socket_fds() - sockets_before) == 1
    assert wait_for(lambda: not (set(threading.enumerate()) - threads_before))


@pytest.mark.parametrize("transport", ["websocket", "sse", "auto"])
def test_client_close_leaves_no_thread_and_no_socket(
    emulator: ServerProcess, transport: str
) -> None:
    threads_before = set(threading.enumerate())
    sockets_before = socket_fds()
    client = new_client(emulator)
    for n in range(8):
        conversation(client, f"close-{n}", transport)
    one_off = client.stream("m", Context(messages=[UserMessage("stream 5")]), transport=transport)
    assert isinstance(list(one_off)[-1], Done)
    assert socket_fds() - sockets_before  # there is something to close
    client.close()
    left = socket_fds() - sockets_before
    assert wait_for(lambda: not (socket_fds() - sockets_before)), f"sockets left: {left}"
    assert wait_for(lambda: not (set(threading.enumerate()) - threads_before)), [
        t.name for t in set(threading.enumerate()) - threads_before
    ]
