"""Waiting on the reader's queue never hangs past its timeout.

CPython 3.10's ``queue.SimpleQueue.get`` can block forever when given a timeout: on an
empty queue whose internal lock is free, its first pass takes the lock and then recomputes
the time left; once more than a microsecond of the timeout has gone (always for
``timeout=0``, or for any timeout when the thread is descheduled between the two clock
reads), the time left is negative, and a lock wait with a negative timeout has no limit.
The reproduction below hangs within a fraction of a second on 3.10.13 without the
workaround. These tests run the same loop through our code and fail by timing out when it
hangs.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import pytest

from openai_ws.exceptions import ConnectionClosed
from openai_ws.protocol import parse_server_event
from openai_ws.transports._common import queue_get
from openai_ws.transports._link import End, Link

ROUNDS = 200_000  # the unguarded loop hangs after 3,000-230,000 calls on 3.10


def finishes(loop: Callable[[], None], seconds: float = 20.0) -> bool:
    """Run *loop* in a daemon thread (a hung one cannot keep the tests from ending)."""
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            loop()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    finished = done.wait(seconds)
    assert not errors, errors
    return finished


def test_a_zero_timeout_on_an_empty_queue_raises_empty_every_time() -> None:
    def loop() -> None:
        for n in range(ROUNDS):
            q: queue.SimpleQueue[int] = queue.SimpleQueue()
            if n % 2:  # a put taken without waiting leaves the queue's lock free again
                q.put(n)
                assert queue_get(q, 0) == n
            with pytest.raises(queue.Empty):
                queue_get(q, 0)

    assert finishes(loop), "queue_get(q, 0) hung on an empty queue"


def test_a_short_timeout_on_an_empty_queue_ends() -> None:
    def loop() -> None:
        q: queue.SimpleQueue[int] = queue.SimpleQueue()
        for n in range(20_000):
            q.put(n)
            assert queue_get(q, 1e-6) == n
            with pytest.raises(queue.Empty):
                queue_get(q, 1e-7)

    assert finishes(loop), "queue_get(q, 1e-7) hung on an empty queue"


def test_queue_get_waits_for_a_put_and_keeps_the_order() -> None:
    q: queue.SimpleQueue[int] = queue.SimpleQueue()
    threading.Timer(0.05, q.put, args=(1,)).start()
    started = time.monotonic()
    assert queue_get(q, 5.0) == 1
    assert time.monotonic() - started < 4.0
    for n in (2, 3, 4):
        q.put(n)
    assert [queue_get(q, 0), queue_get(q, None), queue_get(q, 1.0)] == [2, 3, 4]
    started = time.monotonic()
    with pytest.raises(queue.Empty):
        queue_get(q, 0.05)
    assert time.monotonic() - started >= 0.04
    with pytest.raises(queue.Empty):
        queue_get(q, -1.0)  # a deadline already gone: no wait at all


def test_link_take_with_no_time_left_never_hangs() -> None:
    """The loop that hung in CI: sorting what arrived between responses takes with
    ``timeout=0`` until the queue is empty, right after taking a batch without waiting."""
    event = parse_server_event({"type": "response.in_progress", "sequence_number": 1})
    link = Link(None, 1, "t")

    def loop() -> None:
        for _ in range(ROUNDS // 2):
            link.backlog += 2  # as the reader counts what it hands over
            link.queue.put([event, event])
            assert link.take(0) is event
            assert link.take(0) is event
            with pytest.raises(queue.Empty):
                link.take(0)
        link.queue.put(End(ConnectionClosed("closed", code=1000), by_us=True))
        assert isinstance(link.take(0), End)

    assert finishes(loop), "Link.take(0) hung on an empty queue"
    assert link.backlog == 0  # each event taken is counted off the reader's backlog
