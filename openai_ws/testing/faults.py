"""Faults the emulator can inject, and the queue that decides which request gets which.

Inject with :meth:`FakeResponsesServer.inject <openai_ws.testing.FakeResponsesServer.inject>`::

    server.inject(RefuseUpgrade(426))                     # the next WebSocket handshake
    server.inject(CloseSocket(after_events=5, code=1006)) # the next request, any transport
    server.inject(Stall(30), transport="sse", times=None) # every HTTP stream, from now on
    server.inject(Rejection(status=429, code="rate_limit_exceeded",
                            headers={"retry-after": "1"}))

A :class:`~openai_ws.testing.models.Rejection` injected as a fault answers the request with that
error instead of running the model (an HTTP status over HTTP, an ``error`` event over WebSocket).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import attrs

from .models import Rejection

__all__ = [
    "BadFrame",
    "CloseSocket",
    "CutBody",
    "Fault",
    "FaultQueue",
    "RefuseUpgrade",
    "RequestFault",
    "Stall",
]


@attrs.frozen
class RefuseUpgrade:
    """Refuse a WebSocket handshake with an HTTP *status* (426: no WebSocket here; 401; 500...).

    The body is the API's JSON error shape; *headers* are added to the response.
    """

    status: int = 426
    message: str = "WebSocket mode is not available here."
    headers: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class CloseSocket:
    """Close the connection after *after_events* events of the reply.

    Over WebSocket, *code* 1006 drops the TCP connection without a close frame; any other code
    is sent in a close frame with *reason*. Over HTTP the body simply stops (at an event
    boundary) and the connection is dropped.
    """

    after_events: int = 0
    code: int = 1006
    reason: str = ""


@attrs.frozen
class CutBody:
    """HTTP: send *after_events* events, then half of the next one, then drop the connection.
    Over WebSocket it acts as ``CloseSocket(after_events, 1006)``."""

    after_events: int = 0


@attrs.frozen
class BadFrame:
    """Send a broken frame after *after_events* events, then carry on with the reply.

    *kind* ``"non_json"`` sends text that is not JSON; ``"binary"`` sends a binary WebSocket
    frame (over HTTP: a ``data:`` line that is not UTF-8).
    """

    after_events: int = 0
    kind: str = "non_json"

    def __attrs_post_init__(self) -> None:
        if self.kind not in ("non_json", "binary"):
            raise ValueError("kind must be 'non_json' or 'binary'")


@attrs.frozen
class Stall:
    """Pause *seconds* after *after_events* events, then carry on (the server's close ends the
    pause early)."""

    seconds: float
    after_events: int = 0


RequestFault: TypeAlias = CloseSocket | CutBody | BadFrame | Stall | Rejection
Fault: TypeAlias = RefuseUpgrade | RequestFault


@attrs.define
class _Rule:
    fault: Fault
    times: int | None
    transport: str | None
    connection: int | None
    match: Callable[[Mapping[str, Any]], bool] | None
    used: int = 0


class FaultQueue:
    """Rules consulted in the order they were added; the first that matches is used.

    Thread-safe.
    """

    def __init__(self) -> None:
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self.injected: dict[str, int] = {}

    def add(
        self,
        fault: Fault,
        *,
        times: int | None = 1,
        transport: str | None = None,
        connection: int | None = None,
        match: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> None:
        if times is not None and times < 1:
            raise ValueError("times must be a positive number or None (for always)")
        if transport not in (None, "websocket", "sse", "http"):
            raise ValueError("transport must be 'websocket', 'sse', 'http' or None")
        if isinstance(fault, RefuseUpgrade) and transport not in (None, "websocket"):
            raise ValueError("RefuseUpgrade applies to WebSocket handshakes only")
        with self._lock:
            self._rules.append(_Rule(fault, times, transport, connection, match))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def pending(self) -> int:
        """Rules that can still fire (an unlimited rule counts once)."""
        with self._lock:
            return len(self._rules)

    def take_handshake(
        self, connection: int, headers: Mapping[str, str] | None = None
    ) -> RefuseUpgrade | None:
        return self._take(  # type: ignore[return-value]
            lambda rule: isinstance(rule.fault, RefuseUpgrade), connection, None, headers or {}
        )

    def take_request(
        self, transport: str, connection: int, body: Mapping[str, Any]
    ) -> RequestFault | None:
        return self._take(  # type: ignore[return-value]
            lambda rule: not isinstance(rule.fault, RefuseUpgrade), connection, transport, body
        )

    def _take(
        self,
        kind: Callable[[_Rule], bool],
        connection: int,
        transport: str | None,
        body: Mapping[str, Any] | None,
    ) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if not kind(rule):
                    continue
                if rule.connection is not None and rule.connection != connection:
                    continue
                if (
                    rule.transport is not None
                    and transport is not None
                    and rule.transport != transport
                ):
                    continue
                if rule.match is not None and (body is None or not rule.match(body)):
                    continue
                rule.used += 1
                if rule.times is not None and rule.used >= rule.times:
                    self._rules.remove(rule)
                name = type(rule.fault).__name__
                self.injected[name] = self.injected.get(name, 0) + 1
                return rule.fault
        return None
