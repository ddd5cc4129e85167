"""One concurrency level in a fresh process (so that its peak memory is its own):
``python -m openai_ws._bench.concurrency URLS_JSON SESSIONS TURNS`` prints one JSON line."""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from typing import Any

from ..client import Client
from ..events import Done
from ..messages import Context, Tool, ToolResultMessage, UserMessage
from .competitors import TOOL, tool_output


def peak_rss_kib() -> int:
    """This process's peak resident memory. /proc's VmHWM, because Linux carries ru_maxrss over
    an exec: a child would report its parent's peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run(urls: dict[str, str], sessions: int, turns: int) -> dict[str, Any]:
    baseline = threading.active_count()
    client = Client(
        api_key=urls["api_key"], base_url=urls["http_base_url"], transport="websocket", timeout=120
    )
    tool = Tool("lookup", TOOL["description"], TOOL["parameters"])  # type: ignore[arg-type]
    errors: list[str] = []
    done_turns = 0
    lock = threading.Lock()
    start = threading.Barrier(sessions + 1)

    def conversation(number: int) -> None:
        nonlocal done_turns
        context = Context(messages=[UserMessage(f"loop {turns - 1}")], tools=[tool])
        start.wait()
        try:
            for step in range(turns):
                final = None
                for event in client.stream("m", context, session_id=f"s{number}"):
                    final = event
                if not isinstance(final, Done):
                    errors.append(f"session {number} turn {step}: {getattr(final, 'error', final)}")
                    return
                with lock:
                    done_turns += 1
                context.messages.append(final.message)
                for call in final.message.tool_calls:
                    context.messages.append(
                        ToolResultMessage(call.id, call.name, tool_output(step))
                    )
        except Exception as exc:  # reported, not raised: the benchmark counts errors
            errors.append(f"session {number}: {exc!r}")

    threads = [
        threading.Thread(target=conversation, args=(n,), name=f"bench-{n}") for n in range(sessions)
    ]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    peak_kib = peak_rss_kib()
    during = threading.active_count()
    for number in range(sessions):
        client.release_session(f"s{number}")
    client.close()
    deadline = time.monotonic() + 10
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.01)
    return {
        "sessions": sessions,
        "turns": done_turns,
        "seconds": elapsed,
        "turns_per_second": done_turns / elapsed if elapsed else 0.0,
        "errors": len(errors),
        "error_samples": errors[:3],
        "peak_rss_mib": peak_kib / 1024,
        "threads_after_release": threading.active_count() - baseline,
        "threads_before_release": during - baseline,
    }


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))))
