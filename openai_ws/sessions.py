"""Sessions: one WebSocket and one chain per conversation, kept by the client.

A :class:`Session` holds, for one ``session_id``: the WebSocket connection (opened on first use),
what is needed to decide whether the next turn can be a delta (the last full request, the last
response's id and output, how it was carried), and the fallback cool-down. Turns of one session
are serialised by its lock; different sessions run in parallel.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .chain import ChainPlan, plan_request
from .exceptions import ConcurrencyError
from .transports import WebSocketConnection

__all__ = ["ChainState", "Session", "SessionConfig", "freeze_headers"]

JSONDict = dict[str, Any]


@attrs.frozen
class SessionConfig:
    """Everything a session's socket depends on; a change means a new socket."""

    api_key: str | None = attrs.field(repr=False)
    websocket_url: str
    headers: tuple[tuple[str, str], ...] = ()
    connect_timeout: float = 10.0
    max_retries: int = 5
    backoff: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
    proxy: str | bool | None = None
    sslopt: tuple[tuple[str, Any], ...] = ()
    max_frame_size: int = 64 * 1024 * 1024


@attrs.define
class ChainState:
    """What the last turn left for the next one to chain from."""

    request: JSONDict | None = None
    output: list[JSONDict] = attrs.field(factory=list)
    response_id: str | None = None
    transport: str | None = None
    stored: bool = False

    def clear(self) -> None:
        self.request, self.output, self.response_id = None, [], None
        self.transport, self.stored = None, False


class Session:
    """One conversation's transport state. Created by :class:`~openai_ws.Client`."""

    def __init__(
        self, session_id: str | None, config: SessionConfig, *, cooldown: float = 60.0
    ) -> None:
        self.id = session_id
        self.config = config
        self.cooldown = cooldown
        self.chain = ChainState()
        self.http_until = 0.0  # before this monotonic time, use HTTP (after a fallback)
        self.turns = 0
        self.created = time.monotonic()
        self.last_used = self.created
        self.closed = False
        self.retire_after_turn = False
        self._turn = threading.Lock()
        self._owner: int | None = None  # the thread whose turn is open
        self._lock = threading.Lock()
        self._connection: WebSocketConnection | None = None

    def __repr__(self) -> str:
        return f"<Session {self.id!r} turns={self.turns}>"

    # -- turns -----------------------------------------------------------------------------

    def begin_turn(self) -> None:
        """Wait for the session's previous turn to end (turns of one session never overlap).

        Raises:
            ConcurrencyError: the previous turn is still open in this very thread, which would
                otherwise wait for itself forever.
        """
        if self._owner == threading.get_ident() and self._turn.locked():
            raise ConcurrencyError(
                f"session {self.id!r} still has an open turn in this thread: read the previous "
                "stream to its end, or close() it, before starting the next"
            )
        self._turn.acquire()
        self._owner = threading.get_ident()
        self.last_used = time.monotonic()

    def end_turn(self) -> None:
        self.turns += 1
        self.last_used = time.monotonic()
        retire = self.retire_after_turn
        self._owner = None
        self._turn.release()
        if retire:
            self.close()

    @property
    def busy(self) -> bool:
        return self._turn.locked()

    # -- the socket ------------------------------------------------------------------------

    def connection(self) -> WebSocketConnection:
        """The session's WebSocket connection for the turn that is starting: made on first use
        (not yet connected); reopened when the server closed it with a final code or
        reconnecting was given up, which ends automatic reconnection, but a new turn is a new
        request by the caller.

        Raises:
            ConnectError: reopening it failed.
        """
        connection = self._connection_object()
        if connection.needs_connect:
            connection.connect()
        return connection

    def _connection_object(self) -> WebSocketConnection:
        with self._lock:
            if self._connection is None:
                config = self.config
                self._connection = WebSocketConnection(
                    config.websocket_url,
                    api_key=config.api_key,
                    headers=config.headers,
                    connect_timeout=config.connect_timeout,
                    max_retries=config.max_retries,
                    backoff=config.backoff,
                    proxy=config.proxy,
                    sslopt=dict(config.sslopt) or None,
                    max_frame_size=config.max_frame_size,
                    name=f"openai-ws-session-{self.id}" if self.id else None,
                )
            return self._connection

    @property
    def has_connection(self) -> bool:
        with self._lock:
            return self._connection is not None and self._connection.is_connected()

    def drop_connection(self) -> None:
        """Close the socket (the next turn opens a new one)."""
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def use_http_for_a_while(self) -> None:
        self.http_until = time.monotonic() + self.cooldown

    @property
    def in_cooldown(self) -> bool:
        return time.monotonic() < self.http_until

    # -- chaining --------------------------------------------------------------------------

    def plan(
        self, request: JSONDict, transport: str, connection: WebSocketConnection | None = None
    ) -> ChainPlan:
        """Delta or full for this turn, over *transport*."""
        chain = self.chain
        usable: str | None = None
        if chain.response_id is not None:
            if (
                transport == "websocket"
                and connection is not None
                and connection.previous_response_id == chain.response_id
            ):
                usable = chain.response_id  # still in this socket's cache
            if usable is None and chain.stored:
                usable = chain.response_id  # the server stored it
        return plan_request(
            request,
            previous_request=chain.request,
            previous_output=chain.output,
            previous_response_id=usable,
        )

    def remember(self, request: JSONDict, response: Mapping[str, Any], transport: str) -> None:
        """A turn completed: keep what the next turn needs to chain from it."""
        chain = self.chain
        output = response.get("output")
        chain.request = request
        chain.output = (
            [i for i in output if isinstance(i, dict)] if isinstance(output, list) else []
        )
        response_id = response.get("id")
        chain.response_id = response_id if isinstance(response_id, str) else None
        chain.transport = transport
        chain.stored = bool(request.get("store")) and response.get("status") == "completed"

    def remember_warm_up(self, request: JSONDict, response_id: str) -> None:
        chain = self.chain
        chain.request, chain.output, chain.response_id = request, [], response_id
        chain.transport, chain.stored = "websocket", False

    def forget(self) -> None:
        """The next turn sends everything (after an error, an abandon, a reconnect)."""
        self.chain.clear()

    # -- the end ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the socket. Idempotent."""
        self.closed = True
        with contextlib.suppress(Exception):
            self.drop_connection()


def freeze_headers(
    *sources: Mapping[str, str] | Sequence[tuple[str, str]] | None,
) -> tuple[tuple[str, str], ...]:
    """Headers merged in order (later wins, names compared case-insensitively), as a tuple."""
    merged: dict[str, tuple[str, str]] = {}
    for source in sources:
        if not source:
            continue
        items = source.items() if isinstance(source, Mapping) else source
        for name, value in items:
            merged[name.lower()] = (name, value)
    return tuple(merged.values())
