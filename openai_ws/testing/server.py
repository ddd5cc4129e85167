"""FakeResponsesServer: the Responses API on 127.0.0.1, over WebSocket mode and HTTP.

One listening socket serves both. Each accepted connection's request head is read first:

* ``GET /v1/responses`` asking for a WebSocket upgrade is handed to the ``websockets`` library's
  own connection handler (the framing, pings and closing handshake are that library's), with
  the head bytes replayed in front of the socket;
* anything else is served by the standard library's :class:`http.server.BaseHTTPRequestHandler`
  (HTTP/1.1, keep-alive, chunked event streams).

Both front ends send the same :class:`~openai_ws.testing.engine.Reply`, built by the shared
:class:`~openai_ws.testing.engine.Engine`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http
import io
import itertools
import json
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, Final, Protocol

import attrs
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection, serve

from .._redact import redact, redact_headers, register_secret
from .engine import ConnectionState, Engine, LatencyModel, Reply
from .faults import BadFrame, CloseSocket, CutBody, Fault, FaultQueue, RequestFault, Stall
from .models import Model, Rejection

__all__ = ["FakeResponsesServer", "RecordedHandshake", "RecordedRequest", "ServerStats"]

logger = logging.getLogger("openai_ws.testing")

JSONDict = dict[str, Any]

_MAX_HEAD: Final = 64 * 1024
_MAX_BODY: Final = 64 * 1024 * 1024


@attrs.frozen
class RecordedRequest:
    """One request the emulator received.

    Attributes:
        transport: ``"websocket"``, ``"sse"`` (POST with ``stream: true``) or ``"http"``.
        body: the decoded JSON body (or the text, when it was not JSON).
        headers: the headers (of the handshake, for WebSocket), names lower-cased, with every
            credential replaced by ``"<redacted>"``.
        connection: the emulator's id of the TCP connection it came on.
        received_at: ``time.monotonic()`` when it arrived.
        duplicated_items: input items that repeat items the chained response already holds.
    """

    transport: str
    body: Any
    headers: dict[str, str]
    connection: int
    received_at: float
    duplicated_items: int = 0


@attrs.frozen
class RecordedHandshake:
    """One WebSocket handshake: its headers (credentials redacted) and how it was answered."""

    connection: int
    path: str
    headers: dict[str, str]
    status: int


@attrs.frozen
class ServerStats:
    """Counters, as of the moment they were read.

    Attributes:
        connections: TCP connections accepted.
        handshakes: WebSocket handshakes accepted; ``refused_handshakes`` the others.
        requests: requests received (``response.create`` frames and POSTs), by transport in
            ``requests_by_transport``.
        responses: replies sent to the end.
        events_out: events sent.
        bytes_in, bytes_out: bytes on the wire, headers and framing included.
        body_bytes_in: bytes of request bodies alone (``response.create`` frames, POST bodies).
        active_connections: connections open now.
        duplicate_history: chained requests that repeated history the server already had.
    """

    connections: int = 0
    handshakes: int = 0
    refused_handshakes: int = 0
    requests: int = 0
    requests_by_transport: dict[str, int] = attrs.field(factory=dict)
    responses: int = 0
    events_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    body_bytes_in: int = 0
    active_connections: int = 0
    duplicate_history: int = 0


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, int] = {}
        self.by_transport: dict[str, int] = {}

    def add(self, name: str, amount: int = 1) -> None:
        with self.lock:
            self.values[name] = self.values.get(name, 0) + amount

    def snapshot(self) -> ServerStats:
        with self.lock:
            return ServerStats(requests_by_transport=dict(self.by_transport), **self.values)


class _ClientSocket:
    """A client socket seen through byte counters (wire bytes, headers and framing included).

    Both the ``websockets`` connection and the HTTP handler use it as their socket; everything
    but reading and writing goes to the real socket (so selectors see its file descriptor).
    """

    def __init__(self, sock: socket.socket, counters: _Counters, number: int) -> None:
        self._sock = sock
        self._counters = counters
        self.number = number

    def recv(self, size: int, flags: int = 0) -> bytes:
        data = self._sock.recv(size, flags)
        self._counters.add("bytes_in", len(data))
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        received = self._sock.recv_into(buffer, nbytes, flags)
        self._counters.add("bytes_in", received)
        return received

    def sendall(self, data: bytes, flags: int = 0) -> None:
        self._sock.sendall(data, flags)
        self._counters.add("bytes_out", len(data))

    def send(self, data: bytes, flags: int = 0) -> int:
        sent = self._sock.send(data, flags)
        self._counters.add("bytes_out", sent)
        return sent

    def setsockopt(self, level: int, option: int, value: Any) -> None:
        # TLS connections reach the handlers through a socketpair (AF_UNIX), where TCP options
        # do not exist; some websockets versions set TCP_NODELAY without checking the family.
        if level == socket.IPPROTO_TCP and self._sock.family not in (
            socket.AF_INET,
            socket.AF_INET6,
        ):
            return
        self._sock.setsockopt(level, option, value)

    def makefile(self, mode: str = "r", buffering: int | None = None, **_: Any) -> Any:
        size = buffering if buffering and buffering > 0 else io.DEFAULT_BUFFER_SIZE
        if "w" in mode:
            return io.BufferedWriter(_Raw(self, writable=True), size)
        return io.BufferedReader(_Raw(self, writable=False), size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _peek_head(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """The request head, read with MSG_PEEK so that it stays in the socket for its handler."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while True:
            data = sock.recv(_MAX_HEAD, socket.MSG_PEEK)
            if not data or b"\r\n\r\n" in data or len(data) >= _MAX_HEAD:
                return data
            if time.monotonic() > deadline:
                return b""
            time.sleep(0.001)  # part of the head is here; the rest is on its way
    finally:
        sock.settimeout(None)


class _TLSBridge:
    """Terminates TLS and relays the plain bytes through a socket pair, so that the rest of the
    server (MSG_PEEK, selectors) handles TLS connections like plain ones."""

    def __init__(self, raw: socket.socket, context: ssl.SSLContext) -> None:
        raw.settimeout(10)
        self._tls = context.wrap_socket(raw, server_side=True)
        self._tls.settimeout(None)
        self.inner, self._outer = socket.socketpair()
        self._threads = [
            threading.Thread(target=self._pump, args=(self._tls, self._outer), daemon=True),
            threading.Thread(target=self._pump, args=(self._outer, self._tls), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError, ValueError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.inner.close()
        for sock in (self._outer, self._tls):
            with contextlib.suppress(OSError, ValueError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(5)
        for sock in (self._outer, self._tls):
            with contextlib.suppress(OSError):
                sock.close()


class _Raw(io.RawIOBase):
    def __init__(self, sock: _ClientSocket, *, writable: bool) -> None:
        self._sock = sock
        self._writable = writable

    def readable(self) -> bool:
        return not self._writable

    def writable(self) -> bool:
        return self._writable

    def readinto(self, buffer: Any) -> int:
        try:
            return self._sock.recv_into(buffer)
        except (ConnectionError, OSError):
            return 0

    def write(self, data: Any) -> int:
        self._sock.sendall(bytes(data))
        return len(data)


class _RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets logs every handshake header at DEBUG, Authorization included: mask keys."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            self.logger.log(level, "%s", redact(text), **kwargs)


# The connection that the current thread serves, set by _TrackedConnection.
_serving = threading.local()


class _TrackedConnection(ServerConnection):
    """websockets' server connection, recorded on the thread that serves it (see
    :func:`_join_websockets_threads`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _serving.connection = self


def _join_websockets_threads() -> None:
    """Join the threads websockets started for this thread's connection.

    websockets runs a reader thread and a keepalive thread per connection. It joins the reader
    when the connection closes, but not after a refused handshake, and it never joins the
    keepalive thread, which only notices the reader's end when it next gets the CPU. Under load
    that thread outlived close(). Joining both here, in the connection's own thread (which
    close() joins), makes close() wait for every thread the server started. Bounded: both end
    promptly once the socket is closed, which websockets did before returning.
    """
    connection = getattr(_serving, "connection", None)
    _serving.connection = None
    if connection is None:
        return
    for name in ("recv_events_thread", "keepalive_thread"):
        thread = getattr(connection, name, None)
        if isinstance(thread, threading.Thread) and thread.is_alive():
            thread.join(5)


def _redact_headers(headers: Iterator[tuple[str, str]]) -> dict[str, str]:
    """Headers by lower-cased name, credentials masked by the package's one list
    (:func:`openai_ws._redact.redact_headers`)."""
    return {
        name: str(value)
        for name, value in redact_headers({name.lower(): value for name, value in headers}).items()
    }


def _error_body(
    status: int, message: str, code: str | None, type_: str = "invalid_request_error"
) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": type_, "param": None, "code": code}}
    ).encode()


class FakeResponsesServer:
    """A local emulator of the OpenAI Responses API, in WebSocket mode and over HTTP.

    Use it as a context manager; it listens on 127.0.0.1 on a free port::

        with FakeResponsesServer() as server:
            client = Client(api_key="sk-test", base_url=server.http_base_url)
            ...
            assert server.requests[-1].body["previous_response_id"]

    Args:
        model: what the model says (:class:`~openai_ws.testing.DefaultModel` by default; see
            :class:`~openai_ws.testing.ScriptedModel` and
            :class:`~openai_ws.testing.ReplayModel`). Can be replaced later via :attr:`model`.
        api_key: the key clients must send as ``Authorization: Bearer <key>``; None accepts
            any request (the default).
        latency: the :class:`~openai_ws.testing.LatencyModel` (a fast, realistically shaped one
            by default; ``LatencyModel.instant()`` for none).
        max_connection_age: seconds after which a WebSocket connection's requests are refused
            with ``websocket_connection_limit_reached`` (the API allows 60 minutes).
        seed: seeds the generated ids, so runs are repeatable.
        error_shape: ``"nested"`` or ``"flat"`` error events (the API sends both).
        obfuscation: add the ``obfuscation`` padding field to deltas, as the API does.
        reject_unknown_parameters: answer unknown request fields with a 400, as the API does.
        ssl_context: a server-side :class:`ssl.SSLContext` to serve ``wss://`` and
            ``https://`` instead.
        port: the port to listen on (0: any free one).
    """

    def __init__(
        self,
        *,
        model: Model | None = None,
        api_key: str | None = None,
        latency: LatencyModel | None = None,
        max_connection_age: float = 3600.0,
        seed: int = 0,
        error_shape: str = "nested",
        obfuscation: bool = True,
        reject_unknown_parameters: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        port: int = 0,
    ) -> None:
        self.engine = Engine(
            model=model,
            latency=latency,
            seed=seed,
            max_connection_age=max_connection_age,
            obfuscation=obfuscation,
            error_shape=error_shape,
            reject_unknown_parameters=reject_unknown_parameters,
        )
        self.api_key = api_key
        register_secret(api_key)  # kept out of the emulator's logs too
        self.faults = FaultQueue()
        self._ssl = ssl_context
        self._port = port
        self._counters = _Counters()
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._handshakes: list[RecordedHandshake] = []
        self._handshake_headers: dict[int, dict[str, str]] = {}
        self._numbers = itertools.count(1)
        self._closing = threading.Event()
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._ws_handler: Callable[[Any, Any], None] | None = None
        self._accepter: threading.Thread | None = None
        self._threads: set[threading.Thread] = set()
        self._clients: set[_ClientSocket] = set()
        self._ws_connections: set[ServerConnection] = set()
        self._address: tuple[str, int] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeResponsesServer:
        """Start listening (``with`` does this for you). Returns the server."""
        if self._listener is not None:
            raise RuntimeError("the server is already started")
        listener = socket.create_server(("127.0.0.1", self._port))
        self._address = listener.getsockname()[:2]
        # websockets' serve() gives us its per-socket handler (handshake, framing, pings,
        # closing); the accept loop and the threads are ours, so that we do not depend on the
        # internals of its Server, which change between versions.
        factory = serve(
            self._serve_websocket,
            sock=listener,
            process_request=self._process_handshake,
            create_connection=_TrackedConnection,
            max_size=_MAX_BODY,
            server_header="openai-ws-emulator",
            compression=None,
            close_timeout=1.0,  # a client that never answers the close must not hold close() up
            logger=_RedactingLogger(logging.getLogger("websockets.server"), {}),
        )
        self._ws_handler = factory.handler
        self._listener = listener
        self._wake_r, self._wake_w = socket.socketpair()
        self._accepter = threading.Thread(
            target=self._accept, name="openai-ws-emulator", daemon=True
        )
        self._accepter.start()
        return self

    def _accept(self) -> None:
        listener, wake = self._listener, self._wake_r
        assert listener is not None
        assert wake is not None
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while not self._closing.is_set():
                selector.select()
                if self._closing.is_set():
                    return
                try:
                    sock, address = listener.accept()
                except OSError:
                    continue
                # daemon: a forgotten server must not keep the interpreter alive; close()
                # still joins every one of these threads
                thread = threading.Thread(
                    target=self._dispatch,
                    args=(sock, address),
                    name="openai-ws-emulator-conn",
                    daemon=True,
                )
                with self._lock:
                    self._threads.add(thread)
                thread.start()

    def close(self) -> None:
        """Stop: close every connection (WebSocket ones with 1001, going away) and wait for
        every thread of the server. Idempotent."""
        if self._listener is None or self._closing.is_set():
            return
        self._closing.set()
        assert self._wake_w is not None
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._accepter is not None:
            self._accepter.join(10)
        self._listener.close()
        with self._lock:
            connections = list(self._ws_connections)
        if connections:
            with concurrent.futures.ThreadPoolExecutor(
                max_workers=min(32, len(connections))
            ) as pool:
                for connection in connections:
                    pool.submit(connection.close, 1001, "server shutting down")
        deadline = time.monotonic() + 10
        while True:
            with self._lock:
                threads = [t for t in self._threads if t.is_alive()]
                clients = list(self._clients)
            if not threads or time.monotonic() > deadline:
                break
            for client in clients:  # connections still in a handshake, HTTP keep-alives
                with contextlib.suppress(OSError):
                    client.shutdown(socket.SHUT_RDWR)
            threads[0].join(0.05)
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()

    def __enter__(self) -> FakeResponsesServer:
        if self._listener is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- what users read -------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._address is None:
            raise RuntimeError("the server is not started")
        return self._address[1]

    @property
    def http_base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1`` (``https`` with TLS): the ``base_url`` for clients."""
        return f"{'https' if self._ssl else 'http'}://127.0.0.1:{self.port}/v1"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:<port>/v1/responses`` (``wss`` with TLS)."""
        return f"{'wss' if self._ssl else 'ws'}://127.0.0.1:{self.port}/v1/responses"

    @property
    def model(self) -> Model:
        """The model answering requests; assign another to change it between tests."""
        return self.engine.model

    @model.setter
    def model(self, model: Model) -> None:
        self.engine.model = model

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def handshakes(self) -> list[RecordedHandshake]:
        """Every WebSocket handshake so far, accepted or refused (a copy)."""
        with self._lock:
            return list(self._handshakes)

    @property
    def stats(self) -> ServerStats:
        """The counters as of now."""
        return self._counters.snapshot()

    def inject(
        self,
        fault: Fault,
        *,
        times: int | None = 1,
        transport: str | None = None,
        connection: int | None = None,
        match: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> None:
        """Inject *fault* into the next matching request (or handshake, for
        :class:`~openai_ws.testing.RefuseUpgrade`).

        Args:
            fault: what goes wrong.
            times: how many matching requests it hits (None: all of them, until
                :meth:`clear_faults`).
            transport: only requests over ``"websocket"``, ``"sse"`` or ``"http"``.
            connection: only requests on the connection with this id.
            match: only requests whose body makes this return True; for
                :class:`~openai_ws.testing.RefuseUpgrade`, only handshakes whose headers (a dict
                with lower-case names) make it return True.
        """
        self.faults.add(fault, times=times, transport=transport, connection=connection, match=match)

    def clear_faults(self) -> None:
        """Forget every fault not yet used."""
        self.faults.clear()

    def reset(self) -> None:
        """Forget recorded requests, handshakes and faults (counters and the store remain)."""
        with self._lock:
            self._requests.clear()
            self._handshakes.clear()
        self.faults.clear()

    # -- plumbing --------------------------------------------------------------------------

    def _record(
        self, transport: str, body: Any, headers: dict[str, str], number: int, duplicated: int = 0
    ) -> None:
        with self._lock:
            self._requests.append(
                RecordedRequest(transport, body, headers, number, time.monotonic(), duplicated)
            )
        with self._counters.lock:
            self._counters.values["requests"] = self._counters.values.get("requests", 0) + 1
            self._counters.by_transport[transport] = (
                self._counters.by_transport.get(transport, 0) + 1
            )

    def _wait(self, seconds: float) -> bool:
        """Sleep, unless the server closes first. True when it should carry on."""
        if seconds <= 0:
            return not self._closing.is_set()
        return not self._closing.wait(seconds)

    def _authorized(self, header: str | None) -> bool:
        if self.api_key is None:
            return True
        return header == f"Bearer {self.api_key}"

    def _dispatch(self, sock: socket.socket, address: Any) -> None:
        """Runs in this connection's own thread: route it to its front end."""
        number = next(self._numbers)
        self._counters.add("connections")
        self._counters.add("active_connections")
        bridge: _TLSBridge | None = None
        client: _ClientSocket | None = None
        try:
            if self._ssl is not None:
                bridge = _TLSBridge(sock, self._ssl)
                sock = bridge.inner
            client = _ClientSocket(sock, self._counters, number)
            with self._lock:
                self._clients.add(client)
            if self._closing.is_set():
                return
            head = _peek_head(sock)
            first_line, _, rest = head.partition(b"\r\n")
            upgrade = first_line.startswith(b"GET ") and b"websocket" in rest.lower()
            if upgrade and self._ws_handler is not None:
                try:
                    self._ws_handler(client, address)  # websockets closes the socket at the end
                finally:
                    _join_websockets_threads()
            elif head:
                _HTTPHandler(client, address, self)  # type: ignore[arg-type]
        except (OSError, ssl.SSLError, ValueError) as exc:
            logger.debug("connection %d failed: %s", number, exc)
        finally:
            self._counters.add("active_connections", -1)
            with self._lock:
                if client is not None:
                    self._clients.discard(client)
                self._threads.discard(threading.current_thread())
            with contextlib.suppress(OSError):
                sock.close()
            if bridge is not None:
                bridge.close()

    # -- WebSocket -------------------------------------------------------------------------

    def _process_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        number = connection.socket.number  # type: ignore[attr-defined]
        headers = _redact_headers(iter(request.headers.raw_items()))
        path = request.path.split("?", 1)[0]
        response: Response | None = None
        if path != "/v1/responses":
            response = self._json_response(
                404, _error_body(404, f"Unknown request URL: GET {path}.", "unknown_url")
            )
        elif not self._authorized(request.headers.get("Authorization")):
            response = self._json_response(
                401,
                _error_body(401, "Incorrect API key provided.", "invalid_api_key"),
            )
        else:
            fault = self.faults.take_handshake(number, headers)
            if fault is not None:
                extra = dict(fault.headers)
                response = self._json_response(
                    fault.status,
                    _error_body(
                        fault.status,
                        fault.message,
                        None,
                        "server_error" if fault.status >= 500 else "invalid_request_error",
                    ),
                    extra,
                )
        status = 101 if response is None else response.status_code
        with self._lock:
            self._handshakes.append(RecordedHandshake(number, request.path, headers, status))
            self._handshake_headers[number] = headers
        self._counters.add("handshakes" if response is None else "refused_handshakes")
        return response

    @staticmethod
    def _json_response(
        status: int, body: bytes, extra: Mapping[str, str] | None = None
    ) -> Response:
        headers = Headers()
        headers["Content-Type"] = "application/json"
        headers["Content-Length"] = str(len(body))
        headers["x-request-id"] = f"req_emulator_{status}"
        for name, value in (extra or {}).items():
            headers[name] = value
        return Response(status, http.HTTPStatus(status).phrase, headers, body)

    def _serve_websocket(self, connection: ServerConnection) -> None:
        number: int = connection.socket.number  # type: ignore[attr-defined]
        state = ConnectionState(number, "websocket")
        with self._lock:
            headers = self._handshake_headers.pop(number, {})
            self._ws_connections.add(connection)
        try:
            self._serve_messages(connection, state, headers)
        finally:
            with self._lock:
                self._ws_connections.discard(connection)

    def _serve_messages(
        self, connection: ServerConnection, state: ConnectionState, headers: dict[str, str]
    ) -> None:
        number = state.id
        try:
            for message in connection:
                if self._closing.is_set():
                    connection.close(1001, "server shutting down")
                    return
                if isinstance(message, bytes):
                    self._counters.add("body_bytes_in", len(message))
                    self._record("websocket", message, headers, number)
                    reply = self.engine.rejection_reply(
                        Rejection(
                            code="invalid_message",
                            message="Binary frames are not supported; send JSON text frames.",
                        ),
                        "websocket",
                    )
                    fault: RequestFault | None = None
                else:
                    self._counters.add("body_bytes_in", len(message.encode()))
                    reply, fault = self._reply_to(message, "websocket", state, headers)
                if not self._send_websocket(connection, reply, fault):
                    return
        except ConnectionClosed:
            return

    def _reply_to(
        self, text: str | bytes, transport: str, state: ConnectionState, headers: dict[str, str]
    ) -> tuple[Reply, RequestFault | None]:
        """The reply to one request, and the fault (if any) to apply while sending it."""
        try:
            body: Any = json.loads(text)
        except ValueError:
            shown = text if isinstance(text, str) else text.decode("utf-8", "replace")
            self._record(transport, shown, headers, state.id)
            rejection = Rejection(
                code="invalid_json", message="The request body is not valid JSON."
            )
            return self.engine.rejection_reply(rejection, transport), None
        fault = self.faults.take_request(
            transport, state.id, body if isinstance(body, dict) else {}
        )
        if isinstance(fault, Rejection):
            self._record(transport, body, headers, state.id)
            state.cache = None  # a failed turn evicts the connection cache
            return self.engine.rejection_reply(fault, transport), None
        reply = self.engine.handle(body, state)
        self._record(transport, body, headers, state.id, reply.duplicated_items)
        if reply.duplicated_items:
            self._counters.add("duplicate_history")
        return reply, fault

    def _send_websocket(
        self, connection: ServerConnection, reply: Reply, fault: RequestFault | None
    ) -> bool:
        """Send a reply over WebSocket; False when the connection must end."""
        return self._deliver(reply, fault, _WebSocketSink(connection))

    def _deliver(self, reply: Reply, fault: RequestFault | None, sink: _Sink) -> bool:
        """Send a reply's frames, with their delays and the fault; False when the connection
        must end. The response is committed (cache, store) just before its last frame goes out,
        as the service finishes a response whether or not the client reads the end of it."""
        frames = reply.frames
        trigger = None
        if fault is not None and not isinstance(fault, Rejection):
            trigger = min(fault.after_events, len(frames))
        for index in range(len(frames) + 1):
            if index == trigger:
                if isinstance(fault, Stall):
                    if not self._wait(fault.seconds):
                        sink.abort()
                        return False
                elif isinstance(fault, BadFrame):
                    sink.bad(fault.kind)
                elif isinstance(fault, (CloseSocket, CutBody)):
                    sink.cut(fault, frames[index] if index < len(frames) else None)
                    return False
            if index == len(frames):
                break
            delay, event_type, frame = frames[index]
            if not self._wait(delay):
                sink.abort()
                return False
            if index == len(frames) - 1 and reply.close_code is None:
                reply.sent()
                self._counters.add("responses")
            sink.send(event_type, frame)
            self._counters.add("events_out")
        if reply.close_code is not None:
            sink.close(reply.close_code)
            return False
        sink.finish()
        return True


class _Sink(Protocol):
    """Where :meth:`FakeResponsesServer._deliver` sends a reply: one per transport."""

    def send(self, event_type: str, frame: str) -> None: ...
    def bad(self, kind: str) -> None: ...
    def cut(
        self, fault: CloseSocket | CutBody, next_frame: tuple[float, str, str] | None
    ) -> None: ...
    def close(self, code: int) -> None: ...
    def abort(self) -> None: ...
    def finish(self) -> None: ...


_BINARY: Final = b"\x00\x01binary"
_NOT_JSON: Final = "{not json"


class _WebSocketSink:
    def __init__(self, connection: ServerConnection) -> None:
        self._connection = connection

    def send(self, event_type: str, frame: str) -> None:
        self._connection.send(frame)

    def bad(self, kind: str) -> None:
        self._connection.send(_BINARY if kind == "binary" else _NOT_JSON)

    def cut(self, fault: CloseSocket | CutBody, next_frame: tuple[float, str, str] | None) -> None:
        if isinstance(fault, CloseSocket):
            self.close(fault.code, fault.reason)
        else:
            self.close(1006)

    def close(self, code: int, reason: str = "") -> None:
        if code == 1006:  # no close frame: drop the TCP connection
            with contextlib.suppress(OSError):
                self._connection.socket.shutdown(socket.SHUT_RDWR)
            return
        self._connection.close(code, reason)

    def abort(self) -> None:
        """The server is shutting down: going away."""
        self._connection.close(1001, "server shutting down")

    def finish(self) -> None:
        """Nothing ends a reply over WebSocket but its terminal event."""


class _EventStreamSink:
    def __init__(self, handler: _HTTPHandler) -> None:
        self._handler = handler

    @staticmethod
    def _event(event_type: str, frame: str) -> bytes:
        return ((f"event: {event_type}\n" if event_type else "") + f"data: {frame}\n\n").encode()

    def _chunk(self, data: bytes) -> None:
        self._handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def send(self, event_type: str, frame: str) -> None:
        self._chunk(self._event(event_type, frame))

    def bad(self, kind: str) -> None:
        self._chunk(
            b"data: \xff\xfe\x00bad\n\n" if kind == "binary" else b"event: bad\ndata: {not json\n\n"
        )

    def cut(self, fault: CloseSocket | CutBody, next_frame: tuple[float, str, str] | None) -> None:
        if isinstance(fault, CutBody) and next_frame is not None:
            encoded = self._event(next_frame[1], next_frame[2])
            self._chunk(encoded[: max(1, len(encoded) // 2)])
        self.abort()

    def close(self, code: int) -> None:
        self.abort()

    def abort(self) -> None:
        """End the body without its final chunk, so the client sees it cut."""
        self._handler.drop()

    def finish(self) -> None:
        self._handler.wfile.write(b"0\r\n\r\n")


class _HTTPHandler(BaseHTTPRequestHandler):
    """POST /v1/responses, as the API answers it (one instance per connection)."""

    protocol_version = "HTTP/1.1"
    server_version = "openai-ws-emulator"
    sys_version = ""
    timeout = 60
    server: FakeResponsesServer  # type: ignore[assignment]

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("http %s: " + format, self.client_address, *args)

    def _send_json(
        self, status: int, body: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-request-id", self.server.engine.new_id("req", 32))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/v1/responses":
            self._send_json(
                405,
                _error_body(
                    405, "Use POST, or open a WebSocket (GET with Upgrade).", "method_not_allowed"
                ),
            )
        else:
            self._send_json(
                404, _error_body(404, f"Unknown request URL: GET {path}.", "unknown_url")
            )

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline(1024)
                    return data
                data += self.rfile.read(size)
                self.rfile.readline(1024)
                if len(data) > _MAX_BODY:
                    return None
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            return None
        return self.rfile.read(length)

    def do_POST(self) -> None:
        emulator = self.server
        path = self.path.split("?", 1)[0]
        raw = self._read_body()
        if raw is None:
            self._send_json(413, _error_body(413, "Request body too large.", "request_too_large"))
            self.close_connection = True
            return
        emulator._counters.add("body_bytes_in", len(raw))
        if path != "/v1/responses":
            self._send_json(
                404, _error_body(404, f"Unknown request URL: POST {path}.", "unknown_url")
            )
            return
        headers = _redact_headers(iter(self.headers.items()))
        if not emulator._authorized(self.headers.get("Authorization")):
            emulator._record(
                "http", raw.decode("utf-8", "replace"), headers, self.connection.number
            )
            self._send_json(401, _error_body(401, "Incorrect API key provided.", "invalid_api_key"))
            return
        try:
            decoded = json.loads(raw)
        except ValueError:
            decoded = None
        transport = "sse" if isinstance(decoded, dict) and decoded.get("stream") is True else "http"
        state = ConnectionState(self.connection.number, transport)
        reply, fault = emulator._reply_to(raw, transport, state, headers)
        if reply.rejected:
            assert reply.error_body is not None
            self._send_json(reply.status, json.dumps(reply.error_body).encode(), reply.headers)
            return
        if transport == "http":
            self._send_plain(reply, fault)
        else:
            self._send_stream(reply, fault)

    def _send_plain(self, reply: Reply, fault: RequestFault | None) -> None:
        emulator = self.server
        if isinstance(fault, Stall) and not emulator._wait(fault.seconds):
            return
        if not emulator._wait(sum(delay for delay, _, _ in reply.frames)):
            return
        if isinstance(fault, (CloseSocket, CutBody)):
            self.close_connection = True
            return
        reply.sent()
        emulator._counters.add("responses")
        self._send_json(200, json.dumps(reply.response or {}).encode())

    def _send_stream(self, reply: Reply, fault: RequestFault | None) -> None:
        emulator = self.server
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", emulator.engine.new_id("req", 32))
        self.end_headers()
        try:
            emulator._deliver(reply, fault, _EventStreamSink(self))
        except OSError:
            self.close_connection = True

    def drop(self) -> None:
        """End the connection abruptly: no final chunk, so the client sees a cut body."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
