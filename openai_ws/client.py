"""The client: configuration, the session registry, and ``stream()``.

``Client`` is safe to share between threads (one per Flask app is the intended use): the turns
of one session are serialised, different sessions run in parallel.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Final

import requests

from .exceptions import ConfigurationError
from .messages import Context, ModelInfo
from .options import StreamOptions, build_request
from .sessions import Session, SessionConfig, SocketBudget, freeze_headers
from .stores import ChainStore, GuardedStore, MemoryChainStore
from .stream import StreamResponse
from .telemetry import Telemetry
from .transports import SSETransport
from .transports._common import Deadline

__all__ = ["DEFAULT_BASE_URL", "Client", "has_ws_session", "release_ws_session", "stream"]

DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
#: ``first_event_timeout`` when none is given (or half of ``timeout``, when that is shorter).
DEFAULT_FIRST_EVENT_TIMEOUT: Final = 10.0
TRANSPORTS: Final = ("auto", "websocket", "sse")
_DEFAULT_OPTIONS: Final = StreamOptions()  # frozen: one for every turn that passes none


def _websocket_url(base_url: str) -> str:
    parsed = urllib.parse.urlsplit(base_url)
    scheme = {"https": "wss", "http": "ws"}.get(parsed.scheme)
    if scheme is None:
        raise ConfigurationError(f"base_url must be an http:// or https:// URL, got {base_url!r}")
    path = parsed.path.rstrip("/") + "/responses"
    return urllib.parse.urlunsplit((scheme, parsed.netloc, path, parsed.query, ""))


class Client:
    """A client of the Responses API that prefers WebSocket mode.

    Args:
        api_key: the API key, or a function that returns it; ``OPENAI_API_KEY`` when omitted.
            The function (or the variable) is read again for every new connection and every
            HTTP request, so a rotated key reaches both transports. A missing key raises
            :class:`~openai_ws.exceptions.ConfigurationError` at the first request.
        base_url: the HTTP base URL; ``OPENAI_BASE_URL``, else ``https://api.openai.com/v1``.
        websocket_url: the WebSocket URL; by default ``base_url`` with ``https``->``wss``
            (``http``->``ws``) and ``/responses`` appended.
        organization: sent as ``OpenAI-Organization``; ``OPENAI_ORG_ID`` when omitted.
        project: sent as ``OpenAI-Project``; ``OPENAI_PROJECT_ID`` when omitted.
        headers: extra headers for every request and handshake.
        transport: the default transport: ``"auto"`` (WebSocket, falling back to HTTP),
            ``"websocket"`` or ``"sse"``.
        timeout: how long a turn may wait without an event (600 s by default): one budget
            for the whole turn, which connecting, retries and the fallback come out of (each
            event gives it back); :class:`~openai_ws.StreamOptions` can override it per turn.
        first_event_timeout: how long a WebSocket may stay silent after a request before the
            attempt counts as failed (when None: 10 s, or half of ``timeout`` if that is
            shorter, leaving the rest for the fallback); ``auto`` then answers over HTTP.
            The API acknowledges a request at once however long the model thinks, so this
            is short.
        ping_interval: seconds of silence after which a session's socket is pinged (None: no
            keepalive); finds a dead connection during a long silent reasoning phase.
        ping_timeout: seconds a ping may go unanswered before the socket counts as dropped.
        max_retries: reconnection attempts of a session's socket after a drop.
        connect_timeout: seconds to open a connection.
        fallback_cooldown: after falling back to HTTP, seconds before a session tries its
            socket again.
        session_idle_timeout: close sessions unused for this long (checked when the client is
            used; None keeps them until released).
        proxy: an ``http://[user:pass@]host:port`` proxy for both transports (the socket
            tunnels through it with CONNECT; HTTP requests go through it as requests sends
            them); False for none even if the environment names one; None to follow the
            environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``), and for HTTP the
            ``http_session``'s own settings.
        sslopt: TLS options for WebSocket mode (see :class:`~openai_ws.WebSocketConnection`).
        max_frame_size: a WebSocket frame from the server larger than this many bytes (64 MiB
            by default) fails the turn with :class:`~openai_ws.exceptions.ProtocolError`
            instead of being buffered.
        http_session: a ``requests.Session`` for HTTP streaming (yours to close).
        verify: TLS verification for HTTP (a CA bundle path, or True).
        tracer_provider: an OpenTelemetry ``TracerProvider`` for one span per turn (None:
            the global one, once the application set it; see :mod:`openai_ws.telemetry`).
        meter_provider: an OpenTelemetry ``MeterProvider`` for the GenAI client metrics
            (None: the global one, likewise). Without either, and without OpenTelemetry
            set up by the application, nothing of OpenTelemetry is imported.
        chain_store: where each session's chain is kept (:mod:`openai_ws.stores`): a
            :class:`~openai_ws.stores.RedisChainStore` shared by every worker lets any of them
            continue a ``store: true`` conversation with only its new input. None: a
            :class:`~openai_ws.MemoryChainStore` of this client's own. A store that fails is
            logged once per outage and worked around (never raised from a stream).
        max_sockets: at most this many open WebSockets (None: no limit). A session that needs
            one when all are taken closes the least recently used idle session's socket (its
            chain survives in the store); when every socket has a turn open, the turn waits
            for one to become idle, up to its timeout, then ends with an ``error`` event
            (:class:`~openai_ws.exceptions.ConcurrencyError` naming ``max_sockets``).
    """

    def __init__(
        self,
        api_key: str | Callable[[], str] | None = None,
        *,
        base_url: str | None = None,
        websocket_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        headers: Mapping[str, str] | None = None,
        transport: str = "auto",
        timeout: float | None = 600.0,
        first_event_timeout: float | None = None,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        max_retries: int = 5,
        connect_timeout: float = 10.0,
        fallback_cooldown: float = 60.0,
        session_idle_timeout: float | None = None,
        proxy: str | bool | None = None,
        sslopt: Mapping[str, Any] | None = None,
        max_frame_size: int = 64 * 1024 * 1024,
        http_session: requests.Session | None = None,
        verify: bool | str = True,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        chain_store: ChainStore | None = None,
        max_sockets: int | None = None,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ConfigurationError(f"transport must be one of {TRANSPORTS}, got {transport!r}")
        for label, value in (
            ("timeout", timeout),
            ("first_event_timeout", first_event_timeout),
            ("ping_interval", ping_interval),
            ("ping_timeout", ping_timeout),
        ):
            if value is not None and value <= 0:
                raise ConfigurationError(f"{label} must be positive (or None), got {value!r}")
        if api_key is not None and not isinstance(api_key, str) and not callable(api_key):
            raise ConfigurationError("api_key must be a string or a function returning one")
        if max_frame_size <= 0:
            raise ConfigurationError(f"max_frame_size must be positive, got {max_frame_size!r}")
        if max_sockets is not None and (
            not isinstance(max_sockets, int) or isinstance(max_sockets, bool) or max_sockets < 1
        ):
            raise ConfigurationError(
                f"max_sockets must be at least 1 (or None), got {max_sockets!r}"
            )
        if chain_store is not None and not isinstance(chain_store, ChainStore):
            raise ConfigurationError(
                "chain_store must have get(), put() and delete() (see openai_ws.stores), "
                f"got {type(chain_store).__name__}"
            )
        if max_retries < 0 or connect_timeout <= 0 or fallback_cooldown < 0:
            raise ConfigurationError(
                "max_retries, connect_timeout and fallback_cooldown must not be negative"
            )
        self._api_key = api_key
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip(
            "/"
        )
        self.websocket_url = websocket_url or _websocket_url(self.base_url)
        if not self.websocket_url.startswith(("ws://", "wss://")):
            raise ConfigurationError(
                f"websocket_url must start with ws:// or wss://, got {self.websocket_url!r}"
            )
        self.organization = organization or os.environ.get("OPENAI_ORG_ID") or None
        self.project = project or os.environ.get("OPENAI_PROJECT_ID") or None
        self.headers = dict(headers or {})
        self.transport = transport
        self.timeout = timeout
        self.first_event_timeout = first_event_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_retries = max_retries
        self.connect_timeout = connect_timeout
        self.fallback_cooldown = fallback_cooldown
        self.session_idle_timeout = session_idle_timeout
        self.proxy = proxy
        self.sslopt = dict(sslopt or {})
        self.max_frame_size = max_frame_size
        self.verify = verify
        self._http_session = http_session
        self._http_transport: SSETransport | None = None
        self._telemetry = Telemetry(tracer_provider, meter_provider, server_url=self.base_url)
        self._sessions: dict[str, Session] = {}
        self.chain_store: ChainStore = (
            chain_store if chain_store is not None else MemoryChainStore()
        )
        self._store = GuardedStore(self.chain_store)
        self.max_sockets = max_sockets
        self._budget = SocketBudget(max_sockets) if max_sockets is not None else None
        self._lock = threading.Lock()
        self._closed = False
        self._pid = os.getpid()
        self._last_config: tuple[tuple[Any, ...], SessionConfig] | None = None
        _CLIENTS.add(self)

    def __repr__(self) -> str:
        return f"<Client {self.base_url} transport={self.transport!r}>"

    # -- configuration ---------------------------------------------------------------------

    @property
    def api_key(self) -> str:
        """The key in use now (never shown in a repr or a message): ``api_key`` (called, if it
        is a function), else ``OPENAI_API_KEY``, read at each access.

        Raises:
            ConfigurationError: there is none.
        """
        source = self._api_key
        key = source() if callable(source) else source
        if source is None:
            key = os.environ.get("OPENAI_API_KEY")
        elif not isinstance(key, str):
            raise ConfigurationError(
                f"the api_key function returned {type(key).__name__}, not a string"
            )
        if not key:
            raise ConfigurationError(
                "no API key: pass Client(api_key=...) or set the OPENAI_API_KEY "
                "environment variable"
            )
        return key

    def _read_key(self) -> str:
        return self.api_key

    def _base_headers(self, extra: Mapping[str, str] | None = None) -> tuple[tuple[str, str], ...]:
        org = {"OpenAI-Organization": self.organization} if self.organization else {}
        project = {"OpenAI-Project": self.project} if self.project else {}
        return freeze_headers(self.headers, org, project, extra)

    def _config(self, options: StreamOptions) -> SessionConfig:
        key = self.api_key  # fails early, before anything is sent, when there is none
        # what the configuration is made of: the same as last time gives the same object (the
        # attributes are public and may change between turns, so they are compared each time)
        rotating = callable(self._api_key)  # then the configuration does not depend on the key
        made_of = (
            None if rotating else key,
            rotating,
            self.websocket_url,
            tuple(self.headers.items()),
            self.organization,
            self.project,
            tuple(options.headers.items()) if options.headers else None,
            self.connect_timeout,
            self.max_retries,
            self.proxy,
            tuple(self.sslopt.items()),
            self.max_frame_size,
            self.ping_interval,
            self.ping_timeout,
        )
        last = self._last_config
        if last is not None and last[0] == made_of:
            return last[1]
        key_id = None if rotating else hashlib.sha256(key.encode()).hexdigest()
        config = SessionConfig(
            api_key=self._read_key,
            key_id=key_id,
            websocket_url=self.websocket_url,
            headers=self._base_headers(options.headers),
            connect_timeout=self.connect_timeout,
            max_retries=self.max_retries,
            proxy=self.proxy,
            sslopt=tuple(sorted(self.sslopt.items())),
            max_frame_size=self.max_frame_size,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
        )
        self._last_config = (made_of, config)
        return config

    def _first_event_timeout(self, options: StreamOptions) -> float | None:
        if self.first_event_timeout is not None:
            return self.first_event_timeout
        timeout = self._timeout(options)
        # half the turn's budget at most: the other half is left for the fallback
        return None if timeout is None else min(timeout / 2, DEFAULT_FIRST_EVENT_TIMEOUT)

    def _timeout(self, options: StreamOptions) -> float | None:
        return options.timeout if options.timeout is not None else self.timeout

    def _http(self) -> SSETransport:
        with self._lock:
            if self._http_transport is None:
                self._http_transport = SSETransport(
                    self.base_url,
                    api_key=self._read_key,
                    session=self._http_session,
                    timeout=(self.connect_timeout, self.timeout),
                    headers=self._base_headers(),
                    verify=self.verify,
                    proxy=self.proxy,
                )
            return self._http_transport

    # -- sessions --------------------------------------------------------------------------

    def _sweep(self) -> None:
        """Close sessions idle for longer than ``session_idle_timeout``."""
        limit = self.session_idle_timeout
        if limit is None:
            return
        now = time.monotonic()
        with self._lock:
            stale = [
                key for key, s in self._sessions.items() if not s.busy and now - s.last_used > limit
            ]
            expired = [self._sessions.pop(key) for key in stale]
        for session in expired:
            session.close()

    def _session(self, session_id: str | None, config: SessionConfig) -> tuple[Session, bool]:
        """The session for *session_id* (made, or rebuilt if its configuration changed)."""
        if self._pid != os.getpid():  # forked without Python's fork hooks (uWSGI by default)
            self._forget_after_fork()
        self._sweep()
        if session_id is None:
            one_off = Session(
                None, config, http=self._http, cooldown=self.fallback_cooldown, budget=self._budget
            )
            return one_off, True
        with self._lock:
            if self._closed:
                raise ConfigurationError("this Client was closed")
            session = self._sessions.get(session_id)
            old = None
            if session is not None and session.config != config:
                old, session = session, None
            if session is None:
                session = Session(
                    session_id,
                    config,
                    http=self._http,
                    cooldown=self.fallback_cooldown,
                    store=self._store,
                    budget=self._budget,
                )
                self._sessions[session_id] = session
        if old is not None:
            if old.busy:
                old.retire_after_turn = True
            else:
                old.close()
        return session, False

    def has_session(self, session_id: str) -> bool:
        """Whether the client holds a session with this id."""
        self._sweep()
        with self._lock:
            return session_id in self._sessions

    def release_session(self, session_id: str) -> bool:
        """Close a session's socket and forget it, its chain in the chain store too (the
        conversation's next turn, in any process, sends everything). Returns whether this
        client held the session.

        A turn in progress on it is abandoned.
        """
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is None:
            self._store.delete(session_id)
            return False
        session.close()
        session.forget_record()
        return True

    @property
    def session_ids(self) -> list[str]:
        """The ids of the sessions the client holds."""
        with self._lock:
            return list(self._sessions)

    def close(self) -> None:
        """Close every session and the HTTP connections. Idempotent."""
        with self._lock:
            self._closed = True
            sessions = list(self._sessions.values())
            self._sessions.clear()
            http, self._http_transport = self._http_transport, None
        for session in sessions:
            session.close()
        if http is not None:
            http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- streaming -------------------------------------------------------------------------

    def stream(
        self,
        model: str | ModelInfo,
        context: Context,
        *,
        session_id: str | None = None,
        transport: str | None = None,
        options: StreamOptions | Mapping[str, Any] | None = None,
    ) -> StreamResponse:
        """Stream one turn of *context* from *model*.

        Returns a blocking iterator of stream events that ends with one ``done`` or ``error``
        event; nothing is sent until it is first iterated. Turns of the same *session_id* share
        one WebSocket and chain with ``previous_response_id`` when the conversation continues
        the previous turn; ``session_id=None`` is a one-off (its socket closes at the end).

        Args:
            model: the model id, or a :class:`~openai_ws.ModelInfo` with prices (for cost).
            context: the conversation so far.
            session_id: the conversation's id, to reuse its socket and chain.
            transport: ``"auto"``, ``"websocket"`` or ``"sse"`` (the client's by default).
            options: :class:`~openai_ws.StreamOptions` (or a dict of its fields).

        Raises:
            ConfigurationError: no API key, or a closed client.
            TypeError, ValueError: bad arguments.
        """
        if isinstance(model, str):
            if not model:
                raise ValueError("model must be a non-empty string")
            info = _model_info(model)
        elif isinstance(model, ModelInfo):
            info = model
        else:
            raise TypeError(f"model must be a str or ModelInfo, got {type(model).__name__}")
        if not isinstance(context, Context):
            raise TypeError(f"context must be a Context, got {type(context).__name__}")
        if options is None:
            options = _DEFAULT_OPTIONS
        elif isinstance(options, Mapping):
            options = StreamOptions(**options)
        elif not isinstance(options, StreamOptions):
            raise TypeError(f"options must be StreamOptions, got {type(options).__name__}")
        policy = transport or self.transport
        if policy not in TRANSPORTS:  # as the constructor does (also a ValueError)
            raise ConfigurationError(f"transport must be one of {TRANSPORTS}, got {policy!r}")
        if session_id is not None and (not isinstance(session_id, str) or not session_id):
            raise ValueError("session_id must be a non-empty string or None")
        if self._closed:
            raise ConfigurationError("this Client was closed")
        request = build_request(info.id, context, options)  # validates the messages
        session, one_off = self._session(session_id, self._config(options))
        return StreamResponse(
            session,
            model=info,
            request=request,
            options=options,
            policy=policy,
            one_off=one_off,
            timeout=self._timeout(options),
            first_event_timeout=self._first_event_timeout(options),
            observer=self._telemetry.observer(session, model=info.id, policy=policy),
        )

    def warm_up(
        self,
        model: str,
        context: Context,
        *,
        session_id: str,
        options: StreamOptions | None = None,
    ) -> str:
        """Open a session's socket ahead of its first turn and send a ``generate: false``
        request with the tools and instructions, so that the first turn starts warm.

        Returns:
            The warm-up response's id (the first turn chains from it).
        """
        options = options or StreamOptions()
        request = build_request(model, context, options)
        session, _ = self._session(session_id, self._config(options))
        timeout = self._timeout(options) or 30.0
        session.begin_turn(Deadline(timeout), abandon=lambda: None)
        try:
            return session.warm_up(request, timeout=timeout)
        finally:
            session.end_turn()

    # -- fork ------------------------------------------------------------------------------

    def _forget_after_fork(self) -> None:
        """In a forked child: drop every session's socket and the HTTP pool without any I/O
        (they are the parent's), so that the child opens its own and never touches those.

        Run by the ``os.register_at_fork`` hook, and at the next turn when the process forked
        without running Python's fork hooks (a C ``fork()``, as uWSGI does by default)."""
        self._pid = os.getpid()
        self._lock = threading.Lock()  # another thread may have held it at fork time
        self._store.after_fork()
        if self.max_sockets is not None:
            self._budget = SocketBudget(self.max_sockets)  # the parent's sockets are not ours
        sessions = list(self._sessions.values())
        self._sessions.clear()
        http, self._http_transport = self._http_transport, None
        for session in sessions:
            session.discard()
        if http is not None:
            http.discard()


#: Every live client, for the fork hook.
_CLIENTS: weakref.WeakSet[Client] = weakref.WeakSet()


@functools.lru_cache(maxsize=64)
def _model_info(model: str) -> ModelInfo:
    """The :class:`ModelInfo` of a model id (frozen: one per id serves every turn)."""
    return ModelInfo(model)


def _after_fork_in_child() -> None:
    global _default_lock
    _default_lock = threading.Lock()
    for client in list(_CLIENTS):
        client._forget_after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)

_default: Client | None = None
_default_lock = threading.Lock()


def default_client() -> Client:
    """The client behind the module-level functions, made on first use from the environment."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Client()
        return _default


def stream(
    model: str | ModelInfo,
    context: Context,
    *,
    session_id: str | None = None,
    transport: str | None = None,
    options: StreamOptions | Mapping[str, Any] | None = None,
) -> StreamResponse:
    """:meth:`Client.stream` on the default client (configured from the environment)."""
    return default_client().stream(
        model, context, session_id=session_id, transport=transport, options=options
    )


def has_ws_session(session_id: str) -> bool:
    """:meth:`Client.has_session` on the default client."""
    return default_client().has_session(session_id)


def release_ws_session(session_id: str) -> bool:
    """:meth:`Client.release_session` on the default client."""
    return default_client().release_session(session_id)
