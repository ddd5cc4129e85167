"""Many concurrent sessions of short turns, one client kind in a fresh process:
``python -m openai_ws._bench.scale URLS_JSON SESSIONS TURNS KIND`` prints one JSON line.

KIND is ``client`` (``Client.stream`` over WebSocket, one session per thread) or ``raw`` (one
raw websocket-client socket per thread, chained by hand with ``previous_response_id``). Every
turn is a short user message answered by a short text; each thread connects inside the timed
region, on its first turn, as a real application does.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from ..protocol import TERMINAL_EVENT_TYPES


def _client_sessions(urls: dict[str, str], sessions: int, turns: int) -> tuple[Any, list[Any], Any]:
    from ..client import Client
    from ..events import Done
    from ..messages import Context, UserMessage

    # as patient as the raw side (timeout=300 bounds its connect too): 1,024 handshakes at
    # once on a small machine can take longer than the default connect_timeout of 10 s
    client = Client(
        api_key=urls["api_key"],
        base_url=urls["http_base_url"],
        transport="websocket",
        timeout=300,
        connect_timeout=300,
    )

    def conversation(number: int, latencies: list[float], errors: list[str]) -> None:
        context = Context(messages=[])
        for step in range(turns):
            context.messages.append(UserMessage(f"turn {step} of session {number}"))
            started = time.perf_counter()
            final = None
            for event in client.stream("m", context, session_id=f"s{number}"):
                final = event
            latencies.append(time.perf_counter() - started)
            if not isinstance(final, Done):
                errors.append(f"session {number} turn {step}: {getattr(final, 'error', final)}")
                return
            context.messages.append(final.message)

    def release() -> None:
        for number in range(sessions):
            client.release_session(f"s{number}")
        client.close()

    return conversation, [], release


def _raw_sessions(urls: dict[str, str], sessions: int, turns: int) -> tuple[Any, list[Any], Any]:
    import websocket

    sockets: list[Any] = []

    def conversation(number: int, latencies: list[float], errors: list[str]) -> None:
        ws = None
        previous = None
        for step in range(turns):
            started = time.perf_counter()
            if ws is None:
                ws = websocket.create_connection(
                    urls["ws_url"],
                    header=[f"Authorization: Bearer {urls['api_key']}"],
                    skip_utf8_validation=True,
                    timeout=300,
                )
                sockets.append(ws)
            body: dict[str, Any] = {
                "type": "response.create",
                "model": "m",
                "store": False,
                "input": [{"role": "user", "content": f"turn {step} of session {number}"}],
            }
            if previous is not None:
                body["previous_response_id"] = previous
            ws.send(json.dumps(body))
            while True:
                event = json.loads(ws.recv())
                if event["type"] in TERMINAL_EVENT_TYPES:
                    break
            latencies.append(time.perf_counter() - started)
            if event["type"] != "response.completed":
                errors.append(f"session {number} turn {step}: {event['type']}")
                return
            previous = event["response"]["id"]

    def release() -> None:
        for ws in sockets:
            ws.close()

    return conversation, [], release


def run(urls: dict[str, str], sessions: int, turns: int, kind: str) -> dict[str, Any]:
    make = _client_sessions if kind == "client" else _raw_sessions
    conversation, _, release = make(urls, sessions, turns)
    latencies: list[float] = []
    errors: list[str] = []
    start = threading.Barrier(sessions + 1)

    def body(number: int) -> None:
        start.wait()
        try:
            conversation(number, latencies, errors)
        except Exception as exc:  # reported, not raised: the benchmark counts errors
            errors.append(f"session {number}: {exc!r}")

    threading.stack_size(512 * 1024)
    threads = [threading.Thread(target=body, args=(n,)) for n in range(sessions)]
    for thread in threads:
        thread.start()
    start.wait()
    cpu0, began = time.process_time(), time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu0
    release()
    latencies.sort()
    count = len(latencies)

    def quantile(q: float) -> float:
        return latencies[min(count - 1, int(q * count))] if count else 0.0

    return {
        "kind": kind,
        "sessions": sessions,
        "turns": count,
        "seconds": elapsed,
        "turns_per_second": count / elapsed if elapsed else 0.0,
        "cpu_ms_per_turn": cpu / count * 1000 if count else 0.0,
        "p50": quantile(0.50),
        "p99": quantile(0.99),
        "errors": len(errors),
        "error_samples": errors[:3],
    }


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])))
