"""HTTP streaming: ``POST /v1/responses`` with ``stream: true``, read as server-sent events.

:class:`SSETransport` uses a ``requests.Session`` (its own, or yours), reads the body with
``iter_content(chunk_size=None)`` into the core's :class:`~openai_ws.sse.SSEDecoder` (never
``iter_lines()``, which splits a CRLF that straddles two chunks into a phantom blank line), and
yields the same typed server events as WebSocket mode.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any, Final

import requests
import requests.adapters
import urllib3.exceptions

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
from ._common import Deadline, KeySource, api_error_from_response, auth_headers
from .base import ResponseStream, Transport

__all__ = ["HTTPResponseEvents", "SSETransport"]

logger = logging.getLogger("openai_ws")

_DEFAULT_TIMEOUT: Final = (10.0, 600.0)


def _shut_down(response: requests.Response) -> None:
    """Shut the response's socket down so that a read blocked in another thread returns now
    (closing alone does not wake it)."""
    raw = response.raw
    with contextlib.suppress(Exception):
        raw.shutdown()  # urllib3 2.3+
        return
    connection = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _close_pools(adapter: object) -> None:
    """Close an adapter's connection pools, and so their idle connections, now.

    ``Session.close()`` alone is not enough: recent urllib3 releases only forget the pools
    there, and their connections stay open until the garbage collector finds the pool, which
    an HTTP response still referenced by the caller keeps alive."""
    managers = [getattr(adapter, "poolmanager", None)]
    managers.extend(getattr(adapter, "proxy_manager", {}).values())
    for manager in managers:
        pools = getattr(manager, "pools", None)
        if pools is None:
            continue
        for key in list(pools.keys()):
            pool = pools.get(key)
            if pool is not None:
                with contextlib.suppress(Exception):
                    pool.close()


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
            for the response headers and for every chunk after them (the idle timeout).
        headers: extra request headers.
        organization, project: sent as ``OpenAI-Organization`` / ``OpenAI-Project``.
        verify: passed to requests (a CA bundle path, or True).

    Thread-safety: one transport may serve many threads at once; each :meth:`create` is its
    own HTTP request on the session's connection pool (requests' sessions are used this way
    widely, though requests does not promise it; pass a session per thread to be strict).
    """

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
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=256)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self.session = session

    kind = "sse"

    def __repr__(self) -> str:
        return f"<SSETransport {self.url}>"

    def open(
        self,
        payload: Mapping[str, Any],
        deadline: Deadline,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> HTTPResponseEvents:
        """:meth:`create` within the turn's *deadline* (see
        :class:`~openai_ws.transports.base.Transport`)."""
        connect, read = self.timeout
        limits = (deadline.limit(connect), deadline.limit(read))
        return self._post(payload, limits, headers, deadline)

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
        return self._post(payload, limits, headers, Deadline(None))

    def _post(
        self,
        payload: Mapping[str, Any],
        limits: tuple[float | None, float | None],
        headers: Mapping[str, str] | None,
        deadline: Deadline,
    ) -> HTTPResponseEvents:
        if not isinstance(payload, Mapping):
            raise TypeError(f"payload must be a mapping, got {type(payload).__name__}")
        body = {k: v for k, v in payload.items() if k != "type"}
        body["stream"] = True
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        request_headers = dict(self._headers)
        if callable(self._key):
            request_headers.update(auth_headers(self._key(), ()))
        if headers:
            request_headers.update(headers)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "http: POST %s %s", self.url, redact(data[:500].decode("utf-8", "replace"))
            )
        try:
            response = self.session.post(
                self.url,
                data=data,
                headers=request_headers,
                stream=True,
                timeout=limits,
                allow_redirects=False,
                verify=self.verify,
            )
        except requests.exceptions.SSLError as exc:
            raise ConnectError(f"TLS failed for {self.url}: {exc}", retryable=False) from exc
        except (requests.exceptions.ConnectTimeout, requests.exceptions.ProxyError) as exc:
            raise ConnectError(f"could not connect to {self.url}: {exc}", retryable=True) from exc
        except requests.exceptions.ReadTimeout as exc:
            raise StreamTimeout(
                f"no response from {self.url} within {limits[1]}s",
                timeout=limits[1],
                phase="first_event",
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise ConnectError(f"could not connect to {self.url}: {exc}", retryable=True) from exc
        except requests.exceptions.RequestException as exc:
            raise ConnectError(f"the request to {self.url} failed: {exc}", retryable=False) from exc
        request_id = response.headers.get("x-request-id")
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
                f"expected an event stream from {self.url}, got content type {kind or 'none'!r}"
            )
        events = HTTPResponseEvents(response, request_id, limits[1], deadline)
        events.bytes_sent = len(data)
        return events

    def close(self) -> None:
        """Close the session and its pooled connections, if the transport made it.
        Idempotent."""
        if self._owns_session:
            for adapter in list(self.session.adapters.values()):
                _close_pools(adapter)
            self.session.close()

    def discard(self) -> None:
        """Forget the pooled connections without any I/O (in a forked child: the sockets are
        the parent's too). The next request opens new ones."""
        for adapter in list(self.session.adapters.values()):
            _close_pools(adapter)  # closes this process's descriptors; the parent keeps its own

    def __enter__(self) -> SSETransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class HTTPResponseEvents(ResponseStream):
    """The events of one HTTP streaming response, ending with the terminal one.

    Closing it (or dropping it, or leaving a ``with`` block) closes the HTTP response, which
    cancels the request on the server.

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
        self._chunks = response.iter_content(chunk_size=None)
        self._pending: list[Any] = []
        self.request_id = request_id

    def __next__(self) -> ServerEvent:
        if self._done:
            raise StopIteration
        try:
            while not self._pending:
                try:
                    chunk = next(self._chunks)
                except StopIteration:
                    truncated = self._decoder.finish()
                    raise ConnectionClosed(
                        "the event stream was cut in the middle of an event"
                        if truncated
                        else "the event stream ended before the response's terminal event",
                        code=None,
                        retryable=True,
                    ) from None
                self.bytes_received += len(chunk)
                self._pending = self._decoder.feed(chunk)
                self._pending.reverse()
            message = self._pending.pop()
            if message.data == "[DONE]":  # not sent by the Responses API; tolerated
                raise ConnectionClosed(
                    "the event stream said [DONE] before the response's terminal event",
                    code=None,
                    retryable=True,
                )
            event = parse_server_event(message.data)
        except requests.exceptions.ConnectionError as exc:
            self._end()
            if exc.args and isinstance(exc.args[0], urllib3.exceptions.ReadTimeoutError):
                raise StreamTimeout(
                    f"no data within {self._read_timeout}s",
                    timeout=self._read_timeout,
                    phase="idle",
                ) from exc
            raise ConnectionClosed(
                f"the event stream broke: {exc}", code=None, retryable=True
            ) from exc
        except requests.exceptions.RequestException as exc:
            self._end()
            raise ConnectionClosed(
                f"the event stream broke: {exc}", code=None, retryable=True
            ) from exc
        except BaseException:
            self._end()
            raise
        self._arrived(event, waited=True)
        if event.is_terminal:
            self._drain()
            self._end()
        return event

    def _drain(self, limit: float = 1.0) -> None:
        """Read what follows the terminal event (normally just the end of the chunked body), so
        that the connection goes back to the pool for the next request instead of being closed.
        Bounded: a server that keeps the body open gets its connection closed after *limit*."""
        sock = getattr(getattr(self._response.raw, "connection", None), "sock", None)
        if sock is None:
            return
        try:
            previous = sock.gettimeout()
            sock.settimeout(limit)
        except OSError:
            return
        try:
            for _ in self._chunks:  # anything after the terminal event is not ours to deliver
                pass
        except Exception:  # noqa: S110 - the connection is closed below either way
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.settimeout(previous)

    def _end(self) -> None:
        self._done = True
        self._unregister()
        self._response.close()

    def close(self) -> None:
        """Stop reading and close the HTTP response; safe from another thread, where it wakes a
        reader blocked on the socket. Idempotent."""
        if not self._done:
            _shut_down(self._response)
        self._end()

    def __del__(self) -> None:
        if not self._done:
            self._end()
