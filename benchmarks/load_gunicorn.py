"""Load test: the Flask example under real gunicorn, every turn on a random worker.

What runs, all on 127.0.0.1:

* one emulator (:class:`openai_ws.testing.FakeResponsesServer`) in a process of its own;
* one redis-server (Debian's ``redis-server``), started here on a free port, without
  persistence: it holds the chains (:class:`~openai_ws.stores.RedisChainStore`) and the
  example's conversations (``RedisHistory``), so that any worker can take any turn;
* four gunicorn servers, one worker each (``gthread``, 16 threads), on four ports, all serving
  the example's ``create_app()``. The driver picks the port of every turn with
  ``random.choice``: that is what makes "a random worker" exact (one gunicorn with four workers
  behind one socket lets the kernel choose, and keep-alive pins a client to one worker).

The driver runs 50 chats at once, 10 questions each (every other one makes the model call the
weather tool, so a question is one or two model requests). It prints, for each chain store:
questions, errors, the model requests the emulator received (full vs chained), the bytes of
request bodies uploaded, and the p50 / p99 time of a question. Run it from a clone::

    python3 -m pip install ".[test,redis]"     # flask, gunicorn, redis-py, the emulator
    python benchmarks/load_gunicorn.py          # --chats 50 --turns 10 --runs redis,memory

The figures are reported, never asserted (docs/topics/scaling.rst quotes a run). The run stops
by itself: every wait is bounded, and everything it started is stopped at the end.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import importlib.util
import itertools
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "flask_chat" / "app.py"
KEY = "sk-emulator-load-test"
COOKIE = "openai_ws_chat"
CITIES = ["Paris", "Rome", "Oslo", "Tokyo"]
WORKERS = 4
THREADS = 16


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- inside each gunicorn worker -----------------------------------------------------------------


def wsgi_app() -> Any:
    """The example's app, for gunicorn (``load_gunicorn:wsgi_app()``), configured by the
    driver's environment: ``LOAD_CHAIN_STORE`` (``redis`` or ``memory``), ``LOAD_REDIS_URL``,
    ``LOAD_STORE`` (``1``: ``store: true``), ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``."""
    from openai_ws import Client, StreamOptions
    from openai_ws.stores import RedisChainStore

    spec = importlib.util.spec_from_file_location("flask_chat_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    redis_url = os.environ["LOAD_REDIS_URL"]
    store = os.environ.get("LOAD_STORE") == "1"

    class StoringClient(Client):
        """The example calls ``client.stream(model, context, session_id=...)``: this sets
        ``store`` for it."""

        def stream(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("options", StreamOptions(store=store))
            return super().stream(*args, **kwargs)

    chain_store = (
        RedisChainStore(redis_url) if os.environ.get("LOAD_CHAIN_STORE") == "redis" else None
    )
    max_sockets = int(os.environ.get("LOAD_MAX_SOCKETS") or 0) or None
    client = StoringClient(chain_store=chain_store, transport="websocket", max_sockets=max_sockets)
    return example.create_app(client, "gpt-test", histories=example.RedisHistory(redis_url))


# -- the emulator, in a process of its own ---------------------------------------------------------


def serve_emulator() -> None:
    """Run the emulator until stdin closes; ``stats`` on stdin prints a JSON summary."""
    from openai_ws.testing import FakeResponsesServer

    with FakeResponsesServer(api_key=KEY) as server:
        print(f"READY {server.http_base_url}", flush=True)
        for line in sys.stdin:
            if line.strip() != "stats":
                continue
            records = [r for r in server.requests if isinstance(r.body, dict)]
            records = [r for r in records if "input" in r.body]
            full = sum(1 for r in records if not r.body.get("previous_response_id"))
            stats = server.stats
            summary = {
                "requests": len(records),
                "full": full,
                "chained": len(records) - full,
                "body_bytes_in": stats.body_bytes_in,
                "bytes_in": stats.bytes_in,
                "handshakes": stats.handshakes,
                "responses": stats.responses,
                "duplicate_history": stats.duplicate_history,
                "by_transport": stats.requests_by_transport,
            }
            print(json.dumps(summary), flush=True)


class Emulator:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve-emulator"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("READY "):
            self.close()
            raise SystemExit(f"the emulator did not start: {line!r}")
        self.base_url = line.split()[1]

    def summary(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write("stats\n")
        self.process.stdin.flush()
        return dict(json.loads(self.process.stdout.readline()))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- redis and gunicorn ----------------------------------------------------------------------


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: apt-get install redis-server")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        probe = redis.Redis(port=port, socket_timeout=1)
        for _ in range(200):
            with contextlib.suppress(redis.RedisError):
                if probe.ping():
                    break
            time.sleep(0.05)
        else:
            raise SystemExit("redis-server did not answer")
        probe.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def start_gunicorns(environment: dict[str, str]) -> tuple[list[subprocess.Popen[bytes]], list[int]]:
    ports = [free_port() for _ in range(WORKERS)]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "1",
                "--threads",
                str(THREADS),
                "--worker-class",
                "gthread",
                "--bind",
                f"127.0.0.1:{port}",
                "--timeout",
                "120",
                "--chdir",
                str(ROOT / "benchmarks"),
                "--log-level",
                "warning",
                "load_gunicorn:wsgi_app()",
            ],
            env=environment,
            cwd=ROOT,
        )
        for port in ports
    ]
    import requests

    deadline = time.monotonic() + 60
    for port in ports:
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                stop(processes)
                raise SystemExit(f"gunicorn on port {port} did not start")
            time.sleep(0.1)
    return processes, ports


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the driver ------------------------------------------------------------------------------


def question(turn: int, chat: int) -> str:
    if turn % 2 == 0:
        return f"What's the weather in {CITIES[(turn // 2 + chat) % len(CITIES)]}?"
    return f"Thanks. Note number {turn} of chat {chat}."


def run_chat(chat: int, turns: int, ports: list[int], rng: random.Random) -> list[dict[str, Any]]:
    import requests

    chat_id = uuid.uuid4().hex
    results = []
    with requests.Session() as http:
        http.cookies.set(COOKIE, chat_id, domain="127.0.0.1")
        for turn in range(turns):
            port = rng.choice(ports)
            message = question(turn, chat)
            started = time.perf_counter()
            error = None
            text = ""
            try:
                response = http.get(
                    f"http://127.0.0.1:{port}/stream",
                    params={"message": message},
                    # no keep-alive: gunicorn may close an idle one just as it is reused
                    headers={"Connection": "close"},
                    stream=True,
                    timeout=60,
                )
                event = None
                ended = False
                for line in response.iter_lines(decode_unicode=True):
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        data = json.loads(line[6:])
                        if event == "text_delta":
                            text += data.get("delta", "")
                        elif event == "error":
                            error = data.get("message", "error")
                        elif event == "end":
                            ended = True
                response.close()
                if error is None and not ended:
                    error = f"no end event (HTTP {response.status_code})"
                if error is None and turn % 2 == 1 and message not in text:
                    error = f"an answer that is not this chat's: {text[:80]!r}"
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {exc}"
            results.append({"port": port, "seconds": time.perf_counter() - started, "error": error})
    return results


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run(
    name: str,
    redis_url: str,
    chats: int,
    turns: int,
    store: bool,
    seed: int,
    max_sockets: int | None = None,
) -> dict[str, Any]:
    import redis

    flush = redis.Redis.from_url(redis_url)
    flush.flushall()
    flush.close()
    emulator = Emulator()
    environment = {
        **os.environ,
        "OPENAI_BASE_URL": emulator.base_url,
        "OPENAI_API_KEY": KEY,
        "LOAD_REDIS_URL": redis_url,
        "LOAD_CHAIN_STORE": name,
        "LOAD_STORE": "1" if store else "0",
        "LOAD_MAX_SOCKETS": str(max_sockets or ""),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes, ports = start_gunicorns(environment)
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=chats) as pool:
            futures = [
                pool.submit(run_chat, chat, turns, ports, random.Random(seed * 1000 + chat))
                for chat in range(chats)
            ]
            per_chat = [f.result(timeout=600) for f in futures]
        elapsed = time.perf_counter() - started
        summary = emulator.summary()
    finally:
        stop(processes)
        emulator.close()
    results = [r for chat in per_chat for r in chat]
    seconds = [r["seconds"] for r in results]
    moved = sum(
        1 for chat in per_chat for a, b in itertools.pairwise(chat) if a["port"] != b["port"]
    )
    errors = [r["error"] for r in results if r["error"]]
    return {
        "store_kind": name,
        "store": store,
        "max_sockets": max_sockets,
        "questions": len(results),
        "errors": len(errors),
        "first_errors": errors[:3],
        "moved_between_workers": moved,
        "consecutive_pairs": sum(len(chat) - 1 for chat in per_chat),
        "model_requests": summary["requests"],
        "full": summary["full"],
        "chained": summary["chained"],
        "full_after_first": summary["full"] - chats,
        "uploaded_body_bytes": summary["body_bytes_in"],
        "uploaded_wire_bytes": summary["bytes_in"],
        "handshakes": summary["handshakes"],
        "duplicate_history": summary["duplicate_history"],
        "by_transport": summary["by_transport"],
        "p50_s": percentile(seconds, 0.50),
        "p99_s": percentile(seconds, 0.99),
        "mean_s": statistics.fmean(seconds),
        "elapsed_s": elapsed,
    }


def show(result: dict[str, Any]) -> None:
    label = f"{result['store_kind']} chain store, store={str(result['store']).lower()}"
    if result["max_sockets"]:
        label += f", max_sockets={result['max_sockets']} per worker"
    print(f"== {label}")
    print(
        f"  questions {result['questions']}, errors {result['errors']}"
        f" (moved to another worker: {result['moved_between_workers']}"
        f" of {result['consecutive_pairs']} consecutive turns)"
    )
    print(
        f"  model requests {result['model_requests']}: full {result['full']}"
        f" (after each chat's first: {result['full_after_first']}), chained {result['chained']}"
    )
    print(
        f"  uploaded {result['uploaded_body_bytes']:,} B of request bodies"
        f" ({result['uploaded_wire_bytes']:,} B on the wire), {result['handshakes']} handshakes"
    )
    print(
        f"  question time p50 {result['p50_s'] * 1000:.0f} ms, p99 {result['p99_s'] * 1000:.0f} ms"
        f" (wall {result['elapsed_s']:.1f} s)"
    )
    for error in result["first_errors"]:
        print(f"  error: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument(
        "--runs",
        default="redis,memory,redis-nostore,redis-max8",
        help="comma-separated: redis, memory (store: true), redis-nostore (store: false), "
        "redis-maxN (store: true, max_sockets=N in each worker)",
    )
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--serve-emulator", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_emulator:
        serve_emulator()
        return
    results = []
    with redis_server() as redis_url:
        for run_name in args.runs.split(","):
            kind, _, flag = run_name.partition("-")
            limit = int(flag[3:]) if flag.startswith("max") else None
            result = run(
                kind, redis_url, args.chats, args.turns, flag != "nostore", args.seed, limit
            )
            show(result)
            results.append(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    threading.current_thread().name = "load-driver"
    main()
