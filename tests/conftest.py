"""Shared test helpers: fixture loading, the emulator every network test uses (``server``,
with ``KEY`` and ``FAST``), and the no-leaked-threads guard."""

from __future__ import annotations

import importlib.util
import json
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from openai_ws.testing import FakeResponsesServer, LatencyModel

FIXTURES = Path(__file__).parent / "fixtures"
RECORDED = FIXTURES / "recorded"
SCENARIOS = FIXTURES / "openai-python" / "websocket_scenarios.json"


def recorded_files() -> list[Path]:
    return sorted(RECORDED.glob("*.chunks.txt"))


def recorded_streams(path: Path) -> list[list[dict[str, Any]]]:
    """The streams in one recorded file: a file may hold several, split at response.created."""
    events = [json.loads(line) for line in path.read_text("utf-8").split("\n") if line.strip()]
    streams: list[list[dict[str, Any]]] = []
    for event in events:
        if event["type"] == "response.created" or not streams:
            streams.append([])
        streams[-1].append(event)
    return streams


def all_recorded_streams() -> list[tuple[str, list[dict[str, Any]]]]:
    out = []
    for path in recorded_files():
        streams = recorded_streams(path)
        for number, stream in enumerate(streams):
            name = path.name.replace(".chunks.txt", "")
            out.append((f"{name}#{number}" if len(streams) > 1 else name, stream))
    return out


def scenarios() -> list[dict[str, Any]]:
    data: dict[str, Any] = json.loads(SCENARIOS.read_text("utf-8"))
    return list(data["scenarios"])


#: Multiply every time bound in tests by this on slow machines (OPENAI_WS_TEST_TIME_FACTOR).
TIME_FACTOR = float(__import__("os").environ.get("OPENAI_WS_TEST_TIME_FACTOR", "1"))


@pytest.fixture(scope="session")
def authority() -> Any:
    """A test certificate authority (``trustme.CA``): its ``cert_pem.tempfile()`` is the CA
    bundle a client needs to trust :func:`tls_context`."""
    import trustme

    return trustme.CA()


@pytest.fixture(scope="session")
def tls_context(authority: Any) -> ssl.SSLContext:
    """A server-side TLS context with a certificate for 127.0.0.1 signed by :func:`authority`,
    for ``FakeResponsesServer(ssl_context=...)``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    return context


#: The Flask example (examples/flask_chat/app.py), which several tests load as a module.
FLASK_EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "flask_chat" / "app.py"


def load_flask_example() -> ModuleType:
    """The Flask example, imported from its file (it is not a package)."""
    spec = importlib.util.spec_from_file_location("flask_chat_app", FLASK_EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def socket_fds() -> set[str]:
    """This process's open sockets, as /proc shows them (``socket:[inode]``): for the tests
    that check nothing is left open (the emulator then runs in a process of its own)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


def wait_for(condition: Callable[[], object], seconds: float = 5.0) -> bool:
    """Poll *condition* until it is true or *seconds* (times TIME_FACTOR) pass; its last value.

    For what happens in another thread or process after the call under test returned (a
    server noticing a closed socket, a reader thread ending); never to make a test pass by
    sleeping."""
    deadline = time.monotonic() + seconds * TIME_FACTOR
    while not condition():
        if time.monotonic() > deadline:
            return bool(condition())
        time.sleep(0.01)
    return True


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a thread behind (after a short grace period to finish)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5 * TIME_FACTOR
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert not leaked, f"threads left behind: {[t.name for t in leaked]}"


# -- reliability reports: the soak and leak tests print their totals at the end of the run ------

#: Lines added by tests (see :func:`report`), printed in pytest's terminal summary.
REPORTS: list[str] = []


def report(line: str) -> None:
    """Print *line* in the terminal summary of the run (totals of soaks and leak checks)."""
    REPORTS.append(line)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("openai-ws")
    group.addoption(
        "--soak",
        type=int,
        default=1,
        metavar="N",
        help="run the fault-injection soak and the leak test N times longer (default 1)",
    )
    group.addoption(
        "--soak-seed",
        type=int,
        default=20261123,
        help="the seed of the soak's random fault plan",
    )


def pytest_configure(config: pytest.Config) -> None:
    from hypothesis import settings

    scale = max(1, int(config.getoption("--soak", 1) or 1))
    settings.register_profile("openai-ws", max_examples=300 * scale)
    settings.load_profile("openai-ws")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORTS:
        terminalreporter.section("reliability")
        for line in REPORTS:
            terminalreporter.write_line(line)


# -- the emulator every network test talks to ---------------------------------------------------

#: The API key the shared emulator accepts (a test that checks secrecy may use its own).
KEY = "sk-test-0123456789abcdef0123456789"
#: No simulated latency: events as fast as the emulator makes them.
FAST = LatencyModel.instant()


@pytest.fixture
def server() -> Iterator[FakeResponsesServer]:
    """A local Responses API emulator on 127.0.0.1 (both transports) that accepts :data:`KEY`,
    with no simulated latency; stopped after the test."""
    with FakeResponsesServer(latency=FAST, api_key=KEY) as emulator:
        yield emulator
