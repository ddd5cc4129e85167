"""HTTP streaming: ``POST /v1/responses`` with ``stream: true``, read as server-sent events.

:class:`SSETransport` uses a ``requests.Session`` (its own, or yours) to send the request and
reads the body itself, in pieces as they arrive: for a chunked body, every chunk that came with
one socket read (the framing parsed here, straight from the connection; urllib3's reader, chunk
by chunk, when the body has a content encoding), and one socket read at a time (``read1``) for a
body delimited by the end of the connection or by ``Content-Length``.
(``iter_content(chunk_size=None)`` would read a close-delimited body to its end before yielding
anything, and ``iter_lines()`` splits a CRLF that straddles two chunks into a phantom blank
line.) The bytes go to the core's
:class:`~openai_ws.sse.SSEDecoder`, which yields the same typed server events as WebSocket mode.

Every wait is bounded by the turn's :class:`~openai_ws.transports._common.Deadline`: the wait
for the response headers, and each read of the body (the socket's timeout is set before each
one). After the terminal event the stream returns it at once; the end of the body is read
afterwards, for a few milliseconds at most, only so that the connection can go back to the
pool.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import queue
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

import requests
import requests.adapters
import urllib3
import urllib3.exceptions
import urllib3.response

from .._json import compact
from .._redact import redact
from ..exceptions import (
    ConfigurationError,
    ConnectError,
    ConnectionClosed,
    ProtocolError,
    StreamTimeout,
)
from ..protocol import ServerEvent, parse_server_event
from ..sse import SSEDecoder
from ._common import (
    Deadline,
    KeySource,
    api_error_from_response,
    auth_headers,
    queue_get,
    requests_proxies,
)
from .base import ResponseStream, Transport

__all__ = ["HTTPResponseEvents", "SSETransport"]

logger = logging.getLogger("openai_ws")

_DEFAULT_TIMEOUT: Final = (10.0, 600.0)

#: After the terminal event, how long the end of the body may take to arrive for the connection
#: to go back to the pool (the caller already has the event; a body that lingers longer is cut).
DRAIN_GRACE: Final = 0.01

#: How long a worker thread that ran a request waits for the next one before it ends.
RUNNER_IDLE: Final = 1.0

_UNSET: Final = object()

#: urllib3's response class (``BaseHTTPResponse`` in urllib3 2, ``HTTPResponse`` in 1.26).
_URLLIB3_RESPONSE: Final[type] = getattr(urllib3, "BaseHTTPResponse", None) or (
    urllib3.response.HTTPResponse
)


def _shut_down(response: requests.Response) -> None:
    """Shut the response's socket down so that a read blocked in another thread returns now
    (closing alone does not wake it)."""
    raw = response.raw
    with contextlib.suppress(Exception):
        raw.shutdown()  # urllib3 2.3+
        return
    sock = _socket_of(raw)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _socket_of(raw: Any) -> Any:
    """The socket under urllib3's response *raw* (None once the connection was released)."""
    connection = getattr(raw, "_connection", None) or getattr(raw, "connection", None)
    return getattr(connection, "sock", None)


def _managers(adapter: object) -> list[Any]:
    managers = [getattr(adapter, "poolmanager", None)]
    managers.extend(getattr(adapter, "proxy_manager", {}).values())
    return [manager for manager in managers if manager is not None]


def _close_pools(adapter: object, *, forget: bool = False) -> None:
    """Close an adapter's connection pools, and so their idle connections, now (a socket's
    ``close()``: no ``shutdown()``, no TLS ``close_notify``, so a forked parent that shares the
    descriptor sees nothing).

    ``Session.close()`` alone is not enough: recent urllib3 releases only forget the pools
    there, and their connections stay open until the garbage collector finds the pool, which
    an HTTP response still referenced by the caller keeps alive. With *forget*, the managers
    also drop the closed pools, so that the next request makes a new one."""
    for manager in _managers(adapter):
        pools = getattr(manager, "pools", None)
        if pools is None:
            continue
        for key in list(pools.keys()):
            pool = pools.get(key)
            if pool is not None:
                with contextlib.suppress(Exception):
                    pool.close()
        if forget:
            with contextlib.suppress(Exception):
                pools.clear()


def _timeouts(
    value: float | tuple[float | None, float | None] | None,
) -> tuple[float | None, float | None]:
    if value is None:
        return _DEFAULT_TIMEOUT
    if isinstance(value, tuple):
        connect, read = value
        return connect, read
    return float(value), float(value)


class SSETransport(Transport):
    """The Responses API over HTTP streaming.

    Args:
        base_url: the API base URL, e.g. ``https://api.openai.com/v1``; requests go to
            ``{base_url}/responses``.
        api_key: sent as ``Authorization: Bearer <key>``; a function is called again for
            every request, so a rotated key is used at once.
        session: a ``requests.Session`` to use (and not close); by default the transport makes
            its own, with a connection pool sized for many threads, and closes it in
            :meth:`close`.
        timeout: ``(connect, read)`` seconds, or one number for both. *read* bounds the wait
            for the response headers and for every read of the body after them (the idle
            timeout); within a turn, the turn's deadline bounds them too.
        headers: extra request headers.
        organization, project: sent as ``OpenAI-Organization`` / ``OpenAI-Project``.
        verify: passed to requests (a CA bundle path, or True).
        proxy: an ``http://[user:pass@]host:port`` proxy for every request (``https://`` URLs
            are tunnelled through it with CONNECT); False for none even if the environment
            names one (``HTTPS_PROXY``...; the rest of the environment, such as
            ``REQUESTS_CA_BUNDLE``, still counts); None to follow the environment and the
            session, as requests does.

    Thread-safety: one transport may serve many threads at once; each :meth:`create` is its
    own HTTP request on the session's connection pool (requests' sessions are used this way
    widely, though requests does not promise it; pass a session per thread to be strict).
    :meth:`close` and :meth:`discard` may be called from any thread.
    """

    kind = "sse"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: KeySource,
        session: requests.Session | None = None,
        timeout: float | tuple[float | None, float | None] | None = None,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        organization: str | None = None,
        project: str | None = None,
        verify: bool | str = True,
        proxy: str | bool | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigurationError(
                f"base_url must be an http:// or https:// URL, got {base_url!r}"
            )
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/responses"
        self._key = api_key
        self._headers = auth_headers(
            api_key if isinstance(api_key, str) else None,
            headers,
            organization=organization,
            project=project,
        )
        self._headers.setdefault("Accept", "text/event-stream")
        self._headers.setdefault("Content-Type", "application/json")
        self.timeout = _timeouts(timeout)
        self.verify = verify
        self.proxy = proxy
        self._proxies = requests_proxies(proxy)
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=256)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self.session = session
        self._runners = _Runners()

    def __repr__(self) -> str:
        return f"<SSETransport {self.url}>"

    def open(
        self,
        payload: Mapping[str, Any],
        deadline: Deadline,
        *,
        headers: Mapping[str, str] | None = None,
        first_event_timeout: float | None = None,
    ) -> HTTPResponseEvents:
        """:meth:`create` within the turn's *deadline* (see
        :class:`~openai_ws.transports.base.Transport`; *first_event_timeout* is for
        WebSockets: HTTP's first wait is bounded by *deadline* and the read timeout).

        Cancelling the deadline from another thread returns control at once at every stage:
        while connecting and waiting for the response headers (the request runs in a worker
        thread for that, kept for the next request for a second; an abandoned request's
        response is closed when it comes) and while reading the body (its socket is shut
        down)."""
        connect, read = self.timeout
        limits = (deadline.limit(connect), deadline.limit(read))
        if 0 in limits:  # requests refuses a zero timeout: the turn's budget is spent
            raise StreamTimeout(
                f"the turn's timeout ({deadline.seconds:g}s) ran out before the request was sent",
                timeout=deadline.seconds,
                phase="connect",
            )
        send = self._prepare(payload, limits, headers)
        response = _until_cancelled(send, deadline, self.url, self._runners)
        return self._events(response, send, deadline)

    def create(
        self,
        payload: Mapping[str, Any],
        *,
        timeout: float | tuple[float | None, float | None] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HTTPResponseEvents:
        """POST the request with ``stream: true`` and return its events.

        The HTTP status is checked before anything is yielded: an error status raises the
        typed :class:`~openai_ws.exceptions.APIError` (``AuthenticationError`` for 401,
        ``RateLimitError`` with ``retry_after`` for 429...). API errors inside the stream are
        events, as over WebSocket.

        Raises:
            ConnectError: the request could not be sent.
            StreamTimeout: no response headers within the read timeout.
            APIError: the server answered with an error status.
            ProtocolError: the answer is not an event stream.
            ConnectionClosed: (while iterating) the body ended before the terminal event;
                StreamTimeout: (while iterating) no data within the read timeout.
        """
        limits = _timeouts(timeout) if timeout is not None else self.timeout
        send = self._prepare(payload, limits, headers)
        return self._events(send(), send, Deadline(None))

    def _prepare(
        self,
        payload: Mapping[str, Any],
        limits: tuple[float | None, float | None],
        headers: Mapping[str, str] | None,
    ) -> _Send:
        """The request, ready to send (the key is read now, so that a rotated one counts)."""
        if not isinstance(payload, Mapping):
            raise TypeError(f"payload must be a mapping, got {type(payload).__name__}")
        body = {k: v for k, v in payload.items() if k != "type"}
        body["stream"] = True
        data = compact(body).encode()
        request_headers = dict(self._headers)
        if callable(self._key):
            request_headers.update(auth_headers(self._key(), ()))
        if headers:
            request_headers.update(headers)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "http: POST %s %s", self.url, redact(data[:500].decode("utf-8", "replace"))
            )
        return _Send(self, data, request_headers, limits)

    @staticmethod
    def _events(response: requests.Response, send: _Send, deadline: Deadline) -> HTTPResponseEvents:
        request_id = response.headers.get("x-request-id")
        events = HTTPResponseEvents(response, request_id, send.limits[1], deadline)
        events.bytes_sent = len(send.data)
        return events

    def close(self) -> None:
        """Close the session and its pooled connections, if the transport made it, and end
        the idle worker threads. Idempotent."""
        self._runners.close()
        if self._owns_session:
            for adapter in list(self.session.adapters.values()):
                _close_pools(adapter)
            self.session.close()

    def discard(self) -> None:
        """Forget the pooled connections without any I/O (in a forked child: the sockets are
        the parent's too). Each is closed with ``close()`` alone, which releases this process's
        descriptor; no ``shutdown()`` and no TLS ``close_notify`` reach the peer, so the
        parent's connections go on working. The next request opens new ones."""
        # the worker threads are not there in a forked child (and the old set's lock may have
        # been held by one of the parent's threads): start a new set without touching it
        self._runners = _Runners()
        for adapter in list(self.session.adapters.values()):
            _close_pools(adapter, forget=True)

    def __enter__(self) -> SSETransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Send:
    """One prepared request: calling it sends it and returns the streaming response, its
    status and content type checked (or raises the typed error)."""

    __slots__ = ("data", "headers", "limits", "transport")

    def __init__(
        self,
        transport: SSETransport,
        data: bytes,
        headers: dict[str, str],
        limits: tuple[float | None, float | None],
    ) -> None:
        self.transport = transport
        self.data = data
        self.headers = headers
        self.limits = limits

    def __call__(self) -> requests.Response:
        transport, url, limits = self.transport, self.transport.url, self.limits
        proxies = transport._proxies
        try:
            response = transport.session.post(
                url,
                data=self.data,
                headers=self.headers,
                stream=True,
                timeout=limits,
                allow_redirects=False,
                verify=transport.verify,
                # a copy: requests merges the environment's proxies into the one it gets
                proxies=None if proxies is None else dict(proxies),  # type: ignore[arg-type]
            )
        except requests.exceptions.SSLError as exc:
            raise ConnectError(f"TLS failed for {url}: {exc}", retryable=False) from exc
        except (requests.exceptions.ConnectTimeout, requests.exceptions.ProxyError) as exc:
            raise ConnectError(f"could not connect to {url}: {exc}", retryable=True) from exc
        except requests.exceptions.ReadTimeout as exc:
            raise StreamTimeout(
                f"no response from {url} within {limits[1]}s",
                timeout=limits[1],
                phase="first_event",
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise ConnectError(f"could not connect to {url}: {exc}", retryable=True) from exc
        except requests.exceptions.RequestException as exc:
            raise ConnectError(f"the request to {url} failed: {exc}", retryable=False) from exc
        if response.status_code >= 300:
            try:
                content = response.content
            except requests.exceptions.RequestException:
                content = b""
            finally:
                response.close()
            raise api_error_from_response(
                response.status_code, response.headers, content, fallback="the request failed"
            )
        kind = response.headers.get("content-type", "")
        if kind.split(";")[0].strip().lower() != "text/event-stream":
            response.close()
            raise ProtocolError(
                f"expected an event stream from {url}, got content type {kind or 'none'!r}"
            )
        return response


class _Runner:
    """A worker thread that runs the jobs :class:`_Runners` hands it, one at a time."""

    __slots__ = ("jobs", "thread")

    def __init__(self, runners: _Runners) -> None:
        self.jobs: queue.SimpleQueue[Callable[[], object] | None] = queue.SimpleQueue()
        # a daemon: an abandoned request must never keep the interpreter from exiting
        self.thread = threading.Thread(
            target=runners._serve, args=(self,), name="openai-ws-http-request", daemon=True
        )


class _Runners:
    """The worker threads that run HTTP requests for :func:`_until_cancelled`.

    A thread that finished a request waits :data:`RUNNER_IDLE` seconds for the next one and
    then ends; starting a thread per request costs about ten times more than handing the
    request to one that waits (a new thread's first request runs cold). :meth:`close` ends the
    waiting ones at once; a busy one ends when its request does.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Runner] = []
        self._closed = False
        self._pid = os.getpid()

    def run(self, job: Callable[[], object]) -> None:
        """Run *job* in a worker thread (a waiting one, or a new one)."""
        if self._pid != os.getpid():
            # a child forked without discard(): no thread is ours, and the lock may have
            # been held by one of the parent's when it forked
            self._lock, self._idle, self._pid = threading.Lock(), [], os.getpid()
        runner = None
        with self._lock:
            while self._idle and runner is None:
                candidate = self._idle.pop()
                if candidate.thread.is_alive():
                    runner = candidate
        if runner is None:
            runner = _Runner(self)
            runner.jobs.put(job)
            runner.thread.start()
        else:
            runner.jobs.put(job)

    def _serve(self, runner: _Runner) -> None:
        while True:
            try:
                job = queue_get(runner.jobs, RUNNER_IDLE)
            except queue.Empty:
                with self._lock:
                    if runner in self._idle:  # else a job was just handed over: take it
                        self._idle.remove(runner)
                        return
                continue
            if job is None:
                return
            job()
            del job
            with self._lock:
                if self._closed:
                    return
                self._idle.append(runner)

    def close(self) -> None:
        """End the waiting threads now (and every other one when its request ends)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for runner in idle:
            runner.jobs.put(None)
        for runner in idle:
            if runner.thread is not threading.current_thread():
                runner.thread.join(1.0)


def _until_cancelled(
    send: Callable[[], requests.Response], deadline: Deadline, url: str, runners: _Runners
) -> requests.Response:
    """Run *send* (connect, send, wait for the response headers) so that cancelling
    *deadline* from another thread returns control at once.

    requests cannot be interrupted while it waits, so the request runs in a worker thread of
    *runners* and this thread waits for it or for the cancellation, whichever comes first.
    An abandoned request finishes on its own (its waits are bounded by the deadline's limits),
    and its response, if one comes, is closed at once.

    Raises:
        ConnectionClosed: the deadline was cancelled first.
        whatever *send* raises.
    """
    if deadline.cancelled:
        raise ConnectionClosed(
            f"the request to {url} was not sent: the turn was cancelled", retryable=False
        )
    finished = threading.Event()
    lock = threading.Lock()
    outcome: list[Any] = []
    abandoned = False

    def work() -> None:
        try:
            result: Any = send()
        except BaseException as exc:  # handed to the waiting thread
            result = exc
        with lock:
            if abandoned:
                if isinstance(result, requests.Response):
                    result.close()
                return
            outcome.append(result)
        finished.set()

    unregister = deadline.on_cancel(finished.set)
    try:
        runners.run(work)
        finished.wait()
    finally:
        unregister()
        with lock:
            abandoned = not outcome
    if abandoned:
        raise ConnectionClosed(
            f"the request to {url} was abandoned (the turn was cancelled) before its response",
            code=None,
            retryable=False,
        )
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    assert isinstance(result, requests.Response)
    return result


def _from_urllib3(raw: object) -> bool:
    return isinstance(raw, _URLLIB3_RESPONSE)


def _changed(wait: float | None, last: object) -> bool:
    """Whether a socket timeout of *last* seconds must be set again for *wait*: only when it
    changed by more than a few milliseconds (the deadline restarts with every read that
    brought events, so the exact value moves all the time), which saves a system call per read."""
    if wait is None or not isinstance(last, float | int):
        return wait is not last
    return abs(wait - last) > 0.005


#: The shortest wait a read of the body is given (when the turn's budget is spent, data
#: already received is still taken; the read then times out).
_MIN_WAIT: Final = 0.001

#: The longest chunk-size or trailer line accepted (urllib3's own limit).
_MAX_CHUNK_LINE: Final = 2**16

#: The most a read of a chunked body takes from the socket at once.
_READ_SIZE: Final = 2**16


class _ChunkedBody:
    """A chunked body read straight from the connection's buffered file, every piece of
    payload that has arrived in one read (urllib3's reader yields one HTTP chunk per call,
    and the service sends one event per chunk: a backlog of events cost a read each).

    The framing is read as urllib3 reads it (a chunk-size line up to ``;``, the two bytes
    after a chunk's data skipped, trailer lines up to a blank one), with the same line limit.
    At the end of the body the connection goes back to the pool, as urllib3 does. Used only
    for urllib3 2's responses without a content encoding; anything else keeps urllib3's reader.

    Not thread-safe: one reader; a close from another thread shuts the socket down, which ends
    a blocked read.
    """

    __slots__ = ("_crlf", "_error", "_file", "_left", "_line", "_raw", "_trailer", "ended")

    def __init__(self, raw: Any, file: Any) -> None:
        self._raw = raw
        self._file = file
        self._line = b""  # the start of a chunk-size or trailer line
        self._left = 0  # data bytes left in the current chunk
        self._crlf = 0  # bytes still to skip after the current chunk's data
        self._trailer = False  # the last chunk came: trailer lines until a blank one
        self._error: Exception | None = None  # broken framing after data still to deliver
        self.ended = False

    @classmethod
    def of(cls, raw: Any) -> _ChunkedBody | None:
        """The reader for urllib3 2's response *raw*, or None when urllib3 must read it (a
        content encoding to decode, a response of another shape)."""
        encoding = raw.headers.get("content-encoding", "")
        if encoding.strip().lower() not in ("", "identity"):
            return None
        original = getattr(raw, "_original_response", None)
        file = getattr(getattr(raw, "_fp", None), "fp", None)
        if original is None or file is None or not hasattr(file, "read1"):
            return None
        if getattr(raw, "chunk_left", None) is not None or not hasattr(raw, "release_conn"):
            return None  # urllib3 started reading it
        if not hasattr(raw, "read1"):
            return None  # urllib3 1.26 (untested here): its own reader, as before
        return cls(raw, file)

    def read(self) -> bytes | None:
        """The data of the chunks that arrived with one read (b"" once the body ended; None
        when the read brought framing only).

        Raises:
            urllib3.exceptions.ProtocolError: the framing is invalid, or the body was cut.
            OSError: the socket failed or timed out.
        """
        if self.ended:
            return b""
        if self._error is not None:
            raise self._error
        data = self._file.read1(_READ_SIZE)
        if not data:
            if self._trailer:  # the last chunk came, its blank line not: urllib3 accepts it
                self.ended = True  # (the connection is closed with the response)
                return b""
            raise urllib3.exceptions.ProtocolError("Response ended prematurely")
        if self._line:
            data = self._line + data
            self._line = b""
        pieces: list[bytes] = []
        append = pieces.append
        find = data.find
        pos, size = 0, len(data)
        left, skip = self._left, self._crlf
        while pos < size:
            if left:  # the current chunk's data
                end = pos + left
                if end > size:
                    append(data[pos:] if pos else data)
                    left = end - size
                    break
                append(data[pos:end])
                left = 0
                pos = end + 2  # urllib3 skips the two bytes after the data without a look
                if pos > size:
                    skip = pos - size
                    break
                continue
            if skip:
                step = min(skip, size - pos)
                skip -= step
                pos += step
                continue
            eol = find(b"\n", pos)
            line = data[pos:] if eol < 0 else data[pos : eol + 1]
            if len(line) > _MAX_CHUNK_LINE:
                self._error = urllib3.exceptions.ProtocolError(
                    "Response chunk line exceeded maximum allowed length"
                )
                break
            if eol < 0:
                self._line = line
                break
            pos = eol + 1
            if self._trailer:
                if line in (b"\r\n", b"\n"):
                    self._end()
                    break
                continue
            try:
                left = int(line.split(b";", 1)[0], 16)
            except ValueError:
                left = -1
            if left < 0:
                left = 0
                self._error = urllib3.exceptions.ProtocolError(
                    f"Invalid chunk length: {line[:40]!r}"
                )
                break
            if not left:
                self._trailer = True
        self._left, self._crlf = left, skip
        if pieces:  # what came before broken framing is delivered first
            return pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if self._error is not None:
            raise self._error
        return b"" if self.ended else None

    def _end(self) -> None:
        """The body ended: give the connection back to the pool (as urllib3 does)."""
        self.ended = True
        self._raw._original_response.close()
        self._raw.release_conn()


class HTTPResponseEvents(ResponseStream):
    """The events of one HTTP streaming response, ending with the terminal one.

    The body is read in pieces as they arrive, whatever its framing (chunked, delimited by the
    end of the connection, or by ``Content-Length``); each read waits no longer than the read
    timeout and the turn's deadline allow.

    The terminal event is returned as soon as it is parsed. The end of the body is read when
    the stream is next asked for an event or closed, for at most :data:`DRAIN_GRACE` seconds:
    a body that ends by then leaves its connection in the pool for the next request, one that
    lingers (or is cut) has its connection closed.

    Closing it (or dropping it, or leaving a ``with`` block) before the terminal event closes
    the HTTP response, which cancels the request on the server.

    Attributes:
        request_id: the ``x-request-id`` the server gave.
        response_id: the response's id, once ``response.created`` arrived.
        terminal: the terminal event, once it arrived.
    """

    transport = "sse"

    def __init__(
        self,
        response: requests.Response,
        request_id: str | None,
        read_timeout: float | None,
        deadline: Deadline | None = None,
    ) -> None:
        super().__init__(
            deadline=deadline, first_event_timeout=read_timeout, idle_timeout=read_timeout
        )
        self._response = response
        self._read_timeout = read_timeout
        self._decoder = SSEDecoder()
        raw: Any = response.raw
        self._raw = raw
        #: the body's pieces, unless read with ``raw.read1()`` (urllib3 2: a body without
        #: chunked encoding); for a response that is not urllib3's (an adapter of the
        #: caller's, a test double) or urllib3 1.26's, requests' own reader
        self._chunks: Iterator[bytes] | None = None
        #: a chunked body read straight from the connection (see :class:`_ChunkedBody`)
        self._body: _ChunkedBody | None = None
        if not _from_urllib3(raw):
            self._chunks = response.iter_content(chunk_size=None)
        elif raw.chunked and raw.supports_chunked_reads():
            self._body = _ChunkedBody.of(raw)
            if self._body is None:
                self._chunks = raw.read_chunked(None, decode_content=True)
        elif not hasattr(raw, "read1"):
            self._chunks = response.iter_content(chunk_size=None)
        self._sock = _socket_of(raw)
        self._sock_timeout: object = _UNSET
        self._pending: list[str] = []  # the data of events received, last first
        self._ended = False
        self._closing = threading.Lock()
        self._abandoned = False
        self._pid = os.getpid()
        self.request_id = request_id

    def _read(self, wait: float | None) -> bytes | None:
        """The next piece of the body as it comes (b"" at its end; None when only a chunked
        body's framing came), waiting at most *wait*."""
        body = self._body
        if body is not None and body.ended:
            return b""  # and the socket is the pool's again: not ours to touch
        if wait is not None and wait < _MIN_WAIT:
            # a spent budget: a socket timeout of 0 would make the socket non-blocking, and a
            # read with no data at hand would look like the body's end, not a timeout
            wait = _MIN_WAIT
        sock = self._sock
        if sock is not None and _changed(wait, self._sock_timeout):
            sock.settimeout(wait)
            self._sock_timeout = wait
        if body is not None:
            return body.read()
        if self._chunks is not None:
            return next(self._chunks, b"")
        data: bytes = self._raw.read1(decode_content=True)
        return data

    def __next__(self) -> ServerEvent:
        if self._done:
            self._finish()
            raise StopIteration
        pending = self._pending
        try:
            waited = not pending  # already received: no waiting, no deadline restarted
            while not pending:
                chunk = self._read(self._wait())
                if chunk is None:
                    continue
                if not chunk:
                    if self._deadline.cancelled or self._abandoned:
                        raise self._cancelled()
                    truncated = self._decoder.finish()
                    raise ConnectionClosed(
                        "the event stream was cut in the middle of an event"
                        if truncated
                        else "the event stream ended before the response's terminal event",
                        code=None,
                        retryable=True,
                    )
                self.bytes_received += len(chunk)
                pending = self._pending = self._decoder._feed_data(chunk)
                pending.reverse()
            data = pending.pop()
            if data == "[DONE]":  # not sent by the Responses API; tolerated
                raise ConnectionClosed(
                    "the event stream said [DONE] before the response's terminal event",
                    code=None,
                    retryable=True,
                )
            event = parse_server_event(data)
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            self._end()
            if self._deadline.cancelled or self._abandoned:
                raise self._cancelled() from exc
            if isinstance(exc, (urllib3.exceptions.ReadTimeoutError, TimeoutError)):
                raise self._timed_out() from exc
            raise ConnectionClosed(
                f"the event stream broke: {exc}", code=None, retryable=True
            ) from exc
        except requests.exceptions.RequestException as exc:  # from iter_content only
            self._end()
            if self._deadline.cancelled or self._abandoned:
                raise self._cancelled() from exc
            if exc.args and isinstance(exc.args[0], urllib3.exceptions.ReadTimeoutError):
                raise self._timed_out() from exc
            raise ConnectionClosed(
                f"the event stream broke: {exc}", code=None, retryable=True
            ) from exc
        except Exception as exc:
            self._end()
            if self._deadline.cancelled or self._abandoned:
                # closed from another thread in the middle of a read, which can break it in
                # odd ways (a file closed under it...)
                raise self._cancelled() from exc
            raise
        except BaseException:
            self._end()
            raise
        self._arrived(event, waited=waited)
        return event  # the terminal one too, at once: the body's end is read afterwards

    def _cancelled(self) -> ConnectionClosed:
        return ConnectionClosed("the stream was closed by the caller", code=None, retryable=False)

    def _finish(self) -> None:
        """After the terminal event: read the end of the body if it comes within
        :data:`DRAIN_GRACE`, so that the connection goes back to the pool; close it otherwise.
        One thread does it; a concurrent call returns at once."""
        if not self._closing.acquire(blocking=False):
            return
        try:
            if self._ended:
                return
            reusable = (
                self._body is not None
                or self._chunks is not None
                or getattr(self._raw, "length_remaining", None)
            )
            if reusable and self._sock is not None and not self._deadline.cancelled:
                self._sock_timeout = _UNSET
                try:
                    while self._read(DRAIN_GRACE) != b"":  # what follows is not ours
                        pass
                except Exception:  # noqa: S110 - the connection is closed below
                    pass
            self._end()
        finally:
            self._closing.release()

    def _end(self) -> None:
        self._done = True
        self._ended = True
        self._unregister()
        self._response.close()  # a body read to its end left its connection in the pool

    def close(self) -> None:
        """Stop reading and close the HTTP response; safe from another thread, where it wakes a
        reader blocked on the socket. After the terminal event, it lets the connection go
        back to the pool if the body ends within :data:`DRAIN_GRACE`. Idempotent."""
        if self._ended:
            return
        if self.terminal is not None:
            self._finish()
            return
        self._abandoned = True
        if os.getpid() == self._pid:  # in a forked child, the socket is the parent's too
            _shut_down(self._response)
        self._end()

    def __del__(self) -> None:
        if not self._ended:
            self._end()
