"""The openai-ws command: demo, chat, and their error messages."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from openai_ws import Client
from openai_ws.cli import main, run_chat, run_demo
from openai_ws.testing import FakeResponsesServer, LatencyModel, ScriptedModel


def cli(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "openai_ws", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )


def test_demo_runs_both_transports_and_prints_the_table() -> None:
    result = cli("demo", "--latency", "instant")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("-> get_weather(") == 12  # six cities, over each transport
    assert "Paris: 9C, partly cloudy" in out
    for row in (
        "turns",
        "requests sent",
        "bytes uploaded",
        "time to first token",
        "total time",
        "transport served",
    ):
        assert row in out
    assert "websocket" in out.splitlines()[-3] or "WebSocket mode sent" in out


def test_demo_report_figures() -> None:
    out = io.StringIO()
    websocket, sse = run_demo(latency="instant", out=out)
    assert (websocket.turns, sse.turns) == (7, 7)
    assert (websocket.requests, sse.requests) == (7, 7)
    assert set(websocket.served_by) == {"websocket"}
    assert set(sse.served_by) == {"sse"}
    assert websocket.bytes_uploaded < sse.bytes_uploaded / 2  # deltas, not the whole history
    assert websocket.answer == sse.answer
    assert len(websocket.first_token) == 7


def test_version_and_help() -> None:
    assert cli("--version").stdout.startswith("openai-ws ")
    result = cli()
    assert result.returncode == 2
    assert "required: command" in result.stderr
    usage = cli("--help").stdout
    for command in ("demo", "chat"):
        assert command in usage


def test_chat_with_the_emulator() -> None:
    result = cli("chat", "--emulator", stdin="Hello there\nAnd again\n/quit\n")
    assert result.returncode == 0, result.stderr
    assert "assistant> You said: Hello there" in result.stdout
    assert "assistant> You said: And again" in result.stdout


def test_chat_without_a_key_says_what_to_do() -> None:
    result = cli("chat", stdin="hi\n")
    assert result.returncode == 2
    assert "OPENAI_API_KEY" in result.stderr
    assert "--emulator" in result.stderr
    assert "Traceback" not in result.stderr


def test_chat_with_nothing_listening_reports_the_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = cli(
        "chat",
        "--base-url",
        f"http://127.0.0.1:{port}/v1",
        stdin="hi\n",
        env={"OPENAI_API_KEY": "sk-test-nothing-listens"},
    )
    assert result.returncode == 0
    assert "[error] could not connect" in result.stdout
    assert "sk-test-nothing-listens" not in result.stdout + result.stderr


def test_chat_shows_api_errors() -> None:
    with FakeResponsesServer(api_key="sk-right-key-0123456789") as server:
        result = cli(
            "chat",
            "--base-url",
            server.http_base_url,
            stdin="hi\n",
            env={"OPENAI_API_KEY": "sk-wrong-key-0123456789"},
        )
    assert "[error]" in result.stdout
    assert "Incorrect API key" in result.stdout


@pytest.fixture
def slow_server() -> Iterator[FakeResponsesServer]:
    model = ScriptedModel([" ".join(["word"] * 200), "Second answer."])
    with FakeResponsesServer(latency=LatencyModel(0.0, 0.0, 200.0), model=model) as server:
        yield server


def test_ctrl_c_abandons_the_answer_and_keeps_the_session(slow_server: FakeResponsesServer) -> None:
    lines = iter(["first question", "second question"])

    def read(prompt: str) -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    class InterruptingOutput(io.StringIO):
        interrupted = False

        def write(self, text: str) -> int:
            if (text.startswith("word") or text == " word") and not self.interrupted:
                self.interrupted = True
                super().write(text)
                raise KeyboardInterrupt  # Ctrl-C while the answer streams
            return super().write(text)

    out = InterruptingOutput()
    with Client(api_key="sk-test-0123456789", base_url=slow_server.http_base_url) as client:
        assert run_chat(client, "m", read=read, out=out) == 0
        assert client.has_session("chat")
    text = out.getvalue()
    assert "[interrupted: the answer was abandoned" in text
    assert "Second answer." in text
    assert len(slow_server.requests) == 2
    # the abandoned answer is not in the conversation; the question is
    second = slow_server.requests[1].body
    assert "previous_response_id" not in second
    assert [item["role"] for item in second["input"]] == ["user", "user"]


def test_main_in_process_runs_the_demo() -> None:
    assert main(["demo", "--latency", "instant"]) == 0


# as if the testing extra were missing
WITHOUT_WEBSOCKETS = "import sys; sys.modules['websockets'] = None\n"


def test_chat_emulator_without_the_testing_extra_says_what_to_install() -> None:
    code = WITHOUT_WEBSOCKETS + (
        "from openai_ws.cli import main\nraise SystemExit(main(['chat', '--emulator']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert 'python3 -m pip install ".[testing]"' in result.stderr
    assert '"testing" extra' in result.stderr


def test_importing_the_emulator_without_the_testing_extra_says_what_to_install() -> None:
    code = WITHOUT_WEBSOCKETS + (
        "try:\n    import openai_ws.testing\nexcept ImportError as exc:\n    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert 'python3 -m pip install ".[testing]"' in result.stdout
    assert "websockets" in result.stdout


def test_bench_help_is_plain_text_and_results_stay_out_of_the_current_directory() -> None:
    from openai_ws._bench import default_results_dir

    result = cli("bench", "--help")
    assert result.returncode == 0, result.stderr
    assert "``" not in result.stdout  # no raw reStructuredText in a terminal
    assert str(default_results_dir()) in " ".join(result.stdout.split())
    assert not default_results_dir().resolve().is_relative_to(Path.cwd().resolve())
    assert "benchmarks/results" not in result.stdout
