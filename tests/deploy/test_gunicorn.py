"""The Flask example under real gunicorn: ``--preload``, 2 workers, 4 threads each.

The emulator runs in this process on 127.0.0.1. gunicorn's master loads
``tests/deploy/preloaded_app.py`` (the example's ``from_environment()`` app) and runs a turn on
every chat's session before it forks the workers, so each worker starts with copies of the
master's sockets. Then many chats of several turns each are driven from threads at once. Every
answer must be its own (the emulator's default model answers ``You said: <message>``), no
request may travel on a connection the master opened, and nothing may fail.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from openai_ws.testing import FakeResponsesServer, LatencyModel
from tests.conftest import TIME_FACTOR, report

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-test-gunicorn-0123456789abcdef"
CHATS = 40
TURNS = 3
CLIENT_THREADS = 16
COOKIE = "openai_ws_chat"


class Gunicorn:
    """gunicorn serving the preloaded example on a free port of 127.0.0.1."""

    def __init__(self, environment: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--preload",
                "--workers",
                "2",
                "--threads",
                "4",
                "--bind",
                "127.0.0.1:0",
                "--chdir",
                str(ROOT),
                "--graceful-timeout",
                "10",
                "tests.deploy.preloaded_app:application",
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=environment,
        )
        self.log: list[str] = []
        self.workers: set[int] = set()
        self.url = ""
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read_log, name="gunicorn-log")
        self._reader.start()

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line.rstrip("\n"))
            listening = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", line)
            if listening:
                self.url = listening.group(1)
            booted = re.search(r"Booting worker with pid: (\d+)", line)
            if booted:
                self.workers.add(int(booted.group(1)))
                if len(self.workers) == 2:
                    self._ready.set()
        self._ready.set()  # the log ended: gunicorn stopped (the test sees why)

    def wait_ready(self, seconds: float) -> None:
        ready = self._ready.wait(seconds)
        text = "\n".join(self.log)
        assert ready, f"gunicorn did not start its 2 workers within {seconds:g}s:\n{text}"
        assert self.process.poll() is None, f"gunicorn stopped:\n{text}"
        assert self.url, text

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(30 * TIME_FACTOR)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._reader.join(10)
        return code


@pytest.fixture
def emulator() -> Iterator[FakeResponsesServer]:
    with FakeResponsesServer(latency=LatencyModel.instant(), api_key=KEY) as server:
        yield server


def environment(emulator: FakeResponsesServer) -> dict[str, str]:
    names = ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR", "PYTHONPATH")
    env = {name: os.environ[name] for name in names if name in os.environ}
    env.update(
        OPENAI_API_KEY=KEY,
        OPENAI_BASE_URL=emulator.http_base_url,
        DEPLOY_TEST_CHATS=str(CHATS),
        NO_PROXY="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )
    return env


def read_events(body: str) -> list[tuple[str, Any]]:
    """The server-sent events of a body: (event name, decoded data)."""
    events = []
    for block in body.split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events


def chat(base_url: str, number: int) -> list[dict[str, Any]]:
    """One browser: TURNS questions on chat ``number``'s cookie; what each answer was."""
    results = []
    with requests.Session() as browser:
        browser.trust_env = False  # loopback only, whatever proxy the environment names
        browser.cookies.set(COOKIE, f"chat-{number}")
        for turn in range(TURNS):
            message = f"chat {number} turn {turn} nonce {uuid.uuid4().hex}"
            outcome: dict[str, Any] = {"message": message}
            try:
                reply = browser.get(
                    f"{base_url}/stream", params={"message": message}, timeout=60 * TIME_FACTOR
                )
                outcome["status"] = reply.status_code
                outcome["pid"] = reply.headers.get("X-Worker-Pid")
                events = read_events(reply.text)
                outcome["events"] = [name for name, _ in events]
                outcome["answer"] = "".join(
                    data["delta"]
                    for name, data in events
                    if name == "text_delta" and not data.get("commentary")
                )
                ends = [data for name, data in events if name == "end"]
                outcome["transport"] = ends[0]["transport"] if ends else None
            except requests.RequestException as exc:
                outcome["exception"] = repr(exc)
            results.append(outcome)
    return results


def failed(outcome: dict[str, Any]) -> bool:
    return (
        "exception" in outcome
        or outcome.get("status") != 200
        or "error" in outcome.get("events", [])
        or outcome.get("events", [])[-1:] != ["end"]
        or outcome.get("answer") != f"You said: {outcome['message']}"
    )


def test_the_flask_example_under_gunicorn_preload_with_two_workers_and_threads(
    emulator: FakeResponsesServer,
) -> None:
    started = time.monotonic()
    server = Gunicorn(environment(emulator))
    try:
        server.wait_ready(60 * TIME_FACTOR)
        booted = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(CLIENT_THREADS) as pool:
            chats = list(pool.map(lambda n: chat(server.url, n), range(CHATS)))
        driven = time.monotonic()
    finally:
        code = server.stop()
    outcomes = [outcome for turns in chats for outcome in turns]
    errors = [outcome for outcome in outcomes if failed(outcome)]
    log = "\n".join(server.log)
    report(
        f"gunicorn --preload --workers 2 --threads 4: {len(outcomes)} requests "
        f"({CHATS} chats x {TURNS} turns from {CLIENT_THREADS} threads), {len(errors)} errors, "
        f"{driven - booted:.2f}s of requests ({booted - started:.2f}s to boot with "
        f"{CHATS} preloaded sessions); workers served "
        + ", ".join(
            f"{sum(1 for o in outcomes if o.get('pid') == str(pid))}"
            for pid in sorted(server.workers)
        )
    )
    assert not errors, json.dumps(errors[:5], indent=1)
    assert len(outcomes) == CHATS * TURNS
    assert {outcome["transport"] for outcome in outcomes} == {"websocket"}
    # both workers answered, and never the master
    assert {int(outcome["pid"]) for outcome in outcomes} == server.workers
    assert server.process.pid not in server.workers
    assert "Traceback" not in log, log
    assert code == 0, log

    # the master's turns went over its own connections; no worker ever used one of them
    master = {r.connection for r in emulator.requests if "preload" in json.dumps(r.body)}
    assert len(master) == CHATS
    asked = [r for r in emulator.requests if "nonce" in json.dumps(r.body)]
    assert len(asked) == CHATS * TURNS
    assert not {r.connection for r in asked} & master
