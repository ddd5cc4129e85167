"""Sessions: one WebSocket and one chain per conversation, kept by the client.

A :class:`Session` holds, for one ``session_id``: its transports (its own WebSocket connection,
opened on first use, and the client's shared HTTP transport), what is needed to decide whether
the next turn can be a delta (the last full request, the last response's id and output), and
the fallback cool-down. Turns of one session are serialised by its lock; different sessions run
in parallel. The session talks to its transports only through
:class:`~openai_ws.transports.base.Transport`.

A named session also keeps its chain in the client's chain store (:mod:`openai_ws.stores`), so
that a worker process without this session's socket can continue it, and a session whose socket
was closed to respect ``max_sockets`` (:class:`SocketBudget`) keeps it too. Its own
:class:`ChainState` stays as the socket's memory: it is what the session falls back to when
the store cannot answer.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from .chain import (
    ChainPlan,
    ItemDigest,
    fingerprint,
    plan_from_fingerprint,
    plan_request,
    settings_digest,
)
from .convert import assistant_input_items
from .exceptions import ConcurrencyError, ConnectionClosed
from .history import declared_function_names
from .messages import AssistantMessage
from .stores import ChainRecord, DeferredFingerprint, GuardedStore, MemoryChainStore
from .transports import WebSocketConnection
from .transports._common import Deadline, KeySource
from .transports.base import Transport

__all__ = ["ChainState", "Session", "SessionConfig", "SocketBudget", "freeze_headers"]

JSONDict = dict[str, Any]


@attrs.frozen
class SessionConfig:
    """Everything a session's socket depends on; a change means a new socket.

    ``api_key`` is what the socket reads the key from at each new connection; ``key_id``
    tells two fixed keys apart (None for a callable, which rotates without a new session).
    """

    api_key: KeySource = attrs.field(repr=False, eq=False)
    key_id: str | None = attrs.field(repr=False)
    websocket_url: str
    headers: tuple[tuple[str, str], ...] = ()
    connect_timeout: float = 10.0
    max_retries: int = 5
    backoff: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
    proxy: str | bool | None = None
    sslopt: tuple[tuple[str, Any], ...] = ()
    max_frame_size: int = 64 * 1024 * 1024
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0


@attrs.define
class ChainState:
    """What the last turn left for the next one to chain from."""

    request: JSONDict | None = None
    output: list[JSONDict] = attrs.field(factory=list)
    response_id: str | None = None
    stored: bool = False
    #: the output as input items, when the turn's message gave them (None: convert it)
    replayed: list[JSONDict] | None = None

    def clear(self) -> None:
        self.request, self.output, self.response_id, self.stored = None, [], None, False
        self.replayed = None


logger = logging.getLogger("openai_ws")


class Session:
    """One conversation's transport state. Created by :class:`~openai_ws.Client`.

    Args:
        session_id: the conversation's id (None for a one-off).
        config: what its socket depends on.
        http: returns the HTTP transport to use (the client's, shared by its sessions).
        cooldown: seconds to stay on HTTP after a fallback.
        store: the client's chain store (None: the chain lives in this object only).
        budget: the client's socket budget (None: no limit).
    """

    def __init__(
        self,
        session_id: str | None,
        config: SessionConfig,
        *,
        http: Callable[[], Transport],
        cooldown: float = 60.0,
        store: GuardedStore | None = None,
        budget: SocketBudget | None = None,
    ) -> None:
        self.id = session_id
        self.config = config
        self.cooldown = cooldown
        self.chain = ChainState()
        self.http_until = 0.0  # before this monotonic time, use HTTP (after a fallback)
        self.turns = 0
        self.created = time.monotonic()
        self.last_used = self.created
        self.retire_after_turn = False
        self._http = http
        self._turn = threading.Lock()
        self._owner: int | None = None  # the thread whose turn is open
        self._abandon_open_turn: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._connection: WebSocketConnection | None = None
        self._store = store if session_id is not None else None
        self._budget = budget
        self._deadline: Deadline | None = None  # the open turn's, for a wait on the budget
        # the last planned request, the digest of its input and its settings digest (planning
        # computed them; remember() reuses them for the fingerprint)
        self._digest: tuple[JSONDict, ItemDigest | None, str] | None = None
        self._chained_on_record = False  # the planned delta came from the store's record
        # the last record this session wrote (see plan), and whether its store is this
        # process's own memory, where a record's fingerprint can wait until someone reads it
        self._own_record: ChainRecord | None = None
        self._local_store = store is not None and type(store.store) is MemoryChainStore
        # a record made with another endpoint, key or headers is not this session's to use
        self._scope = hashlib.sha256(
            json.dumps([config.websocket_url, config.key_id, config.headers]).encode()
        ).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"<Session {self.id!r} turns={self.turns}>"

    # -- turns -----------------------------------------------------------------------------

    def begin_turn(self, deadline: Deadline, abandon: Callable[[], None]) -> None:
        """Wait for the session's previous turn to end (turns of one session never overlap).

        A previous turn still open in this very thread cannot be read any more while this one
        runs (a stream left by ``break`` and still referenced): it is abandoned, as its
        ``close()`` would, instead of waiting for itself forever. A turn open in another thread
        is waited for, within *deadline*.

        Args:
            deadline: the new turn's budget; cancelling it stops the wait.
            abandon: what abandons this new turn, for the next one to call in that case.

        Raises:
            ConcurrencyError: the previous turn, in another thread, outlasted *deadline*.
            ConnectionClosed: *deadline* was cancelled while waiting.
        """
        if self._owner == threading.get_ident() and self._turn.locked():
            previous = self._abandon_open_turn
            if previous is not None:
                logger.info(
                    "session %s: abandoning its previous turn, left open in this thread",
                    self.id or "(one-off)",
                )
                previous()
        while not self._turn.acquire(timeout=0.05):
            if deadline.cancelled:
                raise ConnectionClosed("the turn was closed before it started", code=None)
            if deadline.expired():
                raise ConcurrencyError(
                    f"session {self.id!r}: the previous turn, open in another thread, did not "
                    f"end within the timeout ({deadline.seconds:g}s)"
                )
        self._owner = threading.get_ident()
        self._abandon_open_turn = abandon
        self._deadline = deadline
        self.last_used = time.monotonic()

    def end_turn(self) -> None:
        self.turns += 1
        self.last_used = time.monotonic()
        retire = self.retire_after_turn
        self._owner = None
        self._abandon_open_turn = None
        self._deadline = None
        self._digest = None
        self._turn.release()
        if retire:
            self.close()
        if self._budget is not None:
            self._budget.became_idle()  # a turn waiting for a socket may take this one

    @property
    def busy(self) -> bool:
        return self._turn.locked()

    # -- the transports --------------------------------------------------------------------

    def transport(self, kind: str) -> Transport:
        """The transport of *kind* (``"websocket"``: the session's own connection, made on
        first use and not yet connected; ``"sse"``: the client's HTTP transport)."""
        return self._http() if kind == "sse" else self.connection()

    def connection(self) -> WebSocketConnection:
        """The session's WebSocket connection (made on first use, not yet connected).

        With a socket budget, making one first takes a place in it, which may close the least
        recently used idle session's socket, or wait (within the open turn's deadline) for a
        busy one to become idle.

        Raises:
            ConcurrencyError: every socket of the budget stayed busy until the deadline.
            ConnectionClosed: the turn was closed while waiting.
        """
        with self._lock:
            if self._connection is not None:
                return self._connection
        if self._budget is not None:
            # outside a turn (no deadline) there is nothing to wait within: room now, or fail
            self._budget.acquire(self, self._deadline or Deadline(0.0))
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
                    ping_interval=config.ping_interval,
                    ping_timeout=config.ping_timeout,
                    name=f"openai-ws-session-{self.id}" if self.id else None,
                )
            return self._connection

    def drop_connection(self) -> None:
        """Close the socket (the next turn opens a new one)."""
        with self._lock:
            connection, self._connection = self._connection, None
        try:
            if connection is not None:
                connection.close()
        finally:
            if self._budget is not None:
                self._budget.release(self)

    def current_connection(self) -> WebSocketConnection | None:
        """The session's WebSocket connection if it has one (never makes one)."""
        return self._connection

    def try_reserve(self) -> bool:
        """Take the turn lock if no turn is open (for the budget, to close this session's
        socket without racing a turn that starts); :meth:`unreserve` gives it back."""
        return self._turn.acquire(blocking=False)

    def unreserve(self) -> None:
        self._turn.release()

    def use_http_for_a_while(self) -> None:
        self.http_until = time.monotonic() + self.cooldown

    @property
    def in_cooldown(self) -> bool:
        return time.monotonic() < self.http_until

    # -- chaining --------------------------------------------------------------------------

    def plan(self, request: JSONDict, transport: Transport) -> ChainPlan:
        """Delta or full for this turn, over *transport* (prepared: connected, if it must).

        The store's record comes first (another worker may have made the last turn): a delta
        from it when its response is usable here (stored, or the last one on this socket) and
        the request continues it. Otherwise, or when the store cannot answer, the session's own
        memory, as without a store: a delta from the last response this process saw, if the
        socket still holds it. Else the full request.
        """
        self._digest = None
        self._chained_on_record = False
        record = self._read_record()
        chain = self.chain
        # the record this session wrote, of the response its own chain holds: the same rule on
        # the same turn, applied to the request itself instead of its digests
        own = (
            record is not None
            and record is self._own_record
            and record.response_id == chain.response_id
        )
        if record is not None and not own:
            usable_id: str | None = None
            if record.stored or transport.cached_response_id == record.response_id:
                usable_id = record.response_id
            settings = settings_digest(request)
            planned, digest = plan_from_fingerprint(
                request, record.fingerprint, previous_response_id=usable_id, settings=settings
            )
            self._digest = (request, digest, settings)
            if planned.is_delta or record.response_id == chain.response_id:
                self._chained_on_record = planned.is_delta
                return planned
        usable: str | None = None
        if chain.response_id is not None:
            if transport.cached_response_id == chain.response_id:
                usable = chain.response_id  # still in this socket's cache
            if usable is None and chain.stored:
                usable = chain.response_id  # the server stored it
        planned = plan_request(
            request,
            previous_request=chain.request,
            previous_output=chain.output,
            previous_response_id=usable,
            previous_replayed=chain.replayed,
        )
        if own:
            self._chained_on_record = planned.is_delta  # it chains on the record's response
        return planned

    def remember(
        self,
        request: JSONDict,
        response: Mapping[str, Any],
        message: AssistantMessage | None = None,
    ) -> None:
        """A turn completed: keep what the next turn needs to chain from it. *message* is the
        turn's message, built from *response* with *request*'s tools (it spares converting
        the output again)."""
        chain = self.chain
        output = response.get("output")
        chain.request = request
        chain.output = (
            [i for i in output if isinstance(i, dict)] if isinstance(output, list) else []
        )
        response_id = response.get("id")
        chain.response_id = response_id if isinstance(response_id, str) else None
        chain.stored = bool(request.get("store")) and response.get("status") == "completed"
        store, digest = self._store, self._digest
        self._digest = None
        if digest is not None and digest[0] is not request:
            digest = None
        replayed = None
        # the message's items are the output's, as the chain replays them, when the message
        # was built with the same function names (the request's tools, or none echoed)
        if message is not None and (
            request.get("tools") is not None or not declared_function_names(response.get("tools"))
        ):
            replayed = assistant_input_items(message)
        chain.replayed = replayed
        if store is None or self.id is None or chain.response_id is None:
            return
        model = request.get("model")
        make = functools.partial(
            fingerprint,
            request,
            chain.output,
            input_digest=digest[1] if digest is not None else None,
            settings=digest[2] if digest is not None else None,
            replayed=replayed,
        )
        record = ChainRecord(
            response_id=chain.response_id,
            stored=chain.stored,
            model=model if isinstance(model, str) else None,
            # in this process only: computed if another session reads it (see plan)
            fingerprint=DeferredFingerprint(make) if self._local_store else make(),
            scope=self._scope,
        )
        store.put(self.id, record)
        self._own_record = record  # the one before is gone from the store: nothing to settle

    def _settle_record(self) -> None:
        """Compute the fingerprint of the record this session wrote last, if it is still
        deferred (the record then no longer holds the request it was made from)."""
        record, self._own_record = self._own_record, None
        if record is not None and record.deferred:
            record.fingerprint  # noqa: B018 - computed and kept by the record

    def _read_record(self) -> ChainRecord | None:
        """The store's record for this session, when it has one made in this session's scope;
        None when there is none, or no store, or the store did not answer."""
        if self._store is None or self.id is None:
            return None
        _answered, record = self._store.get(self.id)
        if record is None or record.scope != self._scope:
            return None
        return record

    def warm_up(self, request: JSONDict, timeout: float) -> str:
        """Send the ``generate: false`` request for *request* (its model, tools and
        instructions, no input) on the session's socket, and chain the next turn from it.

        Returns:
            The warm-up response's id.
        """
        warm = {k: v for k, v in request.items() if k != "input"}
        connection = self.connection()
        connection.prepare(Deadline(timeout))  # reopens a socket the server closed for good
        response_id = connection.warm_up(**warm, timeout=timeout)
        chain = self.chain
        chain.request = {**warm, "input": [], "generate": False}
        chain.output, chain.response_id, chain.stored = [], response_id, False
        return response_id

    def forget(self) -> None:
        """The next turn sends everything (after an error, an abandon, a reconnect).

        The store's record is deleted too when the failed attempt chained on it (the response
        it names may be gone); otherwise it still names a response that completed, which
        stays as good for the next turn as it was for this one.
        """
        self.chain.clear()
        self._digest = None
        if self._chained_on_record and self._store is not None and self.id is not None:
            self._store.delete(self.id)
            self._own_record = None
        self._chained_on_record = False

    def forget_record(self) -> None:
        """Delete the session's record in the chain store (when the session is released)."""
        if self._store is not None and self.id is not None:
            self._store.delete(self.id)
        self._own_record = None

    # -- the end ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the socket. Idempotent."""
        self._settle_record()
        with contextlib.suppress(Exception):
            self.drop_connection()

    def discard(self) -> None:
        """Forget the socket without any I/O (in a forked child; see
        :meth:`~openai_ws.transports.base.Transport.discard`)."""
        self._settle_record()
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.discard()


class SocketBudget:
    """At most ``limit`` sessions of one client hold a WebSocket at a time.

    A session that needs a socket when the budget is full closes the socket of the least
    recently used session that has no turn open (its chain stays in the chain store, so its
    next turn still chains when the response was stored). A socket whose turn is open is never
    closed: when every one is busy, the turn waits for one to become idle, up to its deadline,
    then fails with :class:`~openai_ws.exceptions.ConcurrencyError`. Thread-safe.

    Args:
        limit: the most sockets at once (at least 1).
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"max_sockets must be at least 1, got {limit!r}")
        self.limit = limit
        self._holders: set[Session] = set()
        self._changed = threading.Condition(threading.Lock())
        self.waiting = 0  # turns waiting for a place now
        self.evictions = 0  # sockets closed to make room, since the start

    def __repr__(self) -> str:
        return f"<SocketBudget {len(self._holders)}/{self.limit}>"

    def __len__(self) -> int:
        return len(self._holders)

    def acquire(self, session: Session, deadline: Deadline) -> None:
        """Make room for *session*'s socket (closing an idle one, or waiting).

        Raises:
            ConcurrencyError: *deadline* expired with every socket busy.
            ConnectionClosed: *deadline* was cancelled (the turn was closed) while waiting.
        """
        victim: Session | None = None
        with self._changed:
            self.waiting += 1
            try:
                while True:
                    if session in self._holders or len(self._holders) < self.limit:
                        self._holders.add(session)
                        return
                    for other in sorted(self._holders, key=lambda s: s.last_used):
                        if other is not session and other.try_reserve():  # idle, and kept so
                            victim = other
                            break
                    if victim is not None:
                        self._holders.discard(victim)
                        self._holders.add(session)
                        self.evictions += 1
                        break
                    if deadline.cancelled:
                        raise ConnectionClosed("the turn was closed while waiting for a socket")
                    if deadline.expired():
                        raise ConcurrencyError(
                            f"every socket of this client is busy (max_sockets={self.limit}) "
                            f"and none became idle within the turn's timeout "
                            f"({deadline.seconds:g}s)"
                        )
                    left = deadline.remaining()
                    self._changed.wait(0.05 if left is None else max(0.001, min(0.05, left)))
            finally:
                self.waiting -= 1
        # outside the budget's lock: closing joins the victim's reader thread
        try:
            logger.debug(
                "session %s: closing its idle socket to make room (max_sockets=%d)",
                victim.id,
                self.limit,
            )
            victim.drop_connection()
        finally:
            victim.unreserve()
            self.became_idle()

    def release(self, session: Session) -> None:
        """*session* no longer holds a socket."""
        with self._changed:
            self._holders.discard(session)
            self._changed.notify_all()

    def became_idle(self) -> None:
        """A turn ended: a waiting turn may close that socket now."""
        with self._changed:
            self._changed.notify_all()


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
