"""Every error openai-ws raises or reports.

The tree::

    OpenAIWSError
    ├── ConfigurationError (also ValueError)     bad or missing configuration, e.g. no API key
    ├── TransportError                           the connection failed, not the API
    │   ├── ConnectError (also ConnectionError)  the handshake or HTTP connection failed
    │   ├── ConnectionClosed                     the socket closed before the response ended
    │   └── StreamTimeout (also TimeoutError)    no event arrived before a deadline
    ├── ProtocolError                            a frame or body that breaks the protocol
    ├── APIError                                 the API answered with an error
    │   ├── AuthenticationError                  401 / invalid_api_key
    │   ├── RateLimitError                       429 / rate_limit_exceeded (``retry_after``)
    │   ├── PreviousResponseNotFound             previous_response_not_found
    │   ├── ConnectionLimitReached               websocket_connection_limit_reached
    │   └── ContextLengthExceeded                context_length_exceeded
    └── ConcurrencyError (also RuntimeError)     two consumers of one connection at once

Each class that stands for a built-in notion also inherits that built-in, so
``except TimeoutError`` or ``except ConnectionError`` keeps working for callers who do not know
this package. Context is carried as attributes (status codes, close codes, request ids); the
message is readable on its own. No message or repr ever contains an API key: text passes
through :func:`openai_ws._redact.redact` and headers through
:func:`openai_ws._redact.redact_headers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._redact import redact, redact_headers

__all__ = [
    "APIError",
    "AuthenticationError",
    "ConcurrencyError",
    "ConfigurationError",
    "ConnectError",
    "ConnectionClosed",
    "ConnectionLimitReached",
    "ContextLengthExceeded",
    "OpenAIWSError",
    "PreviousResponseNotFound",
    "ProtocolError",
    "RateLimitError",
    "StreamTimeout",
    "TransportError",
    "api_error_from_fields",
]

#: Close codes after which reconnecting may succeed (PROTOCOL.md, "Close codes").
RETRYABLE_CLOSE_CODES = frozenset({1001, 1005, 1006, 1011, 1012, 1013, 1015})


class OpenAIWSError(Exception):
    """Root of every exception this package raises.

    Args:
        message: human-readable description; API keys in it are masked.
    """

    def __init__(self, message: str = "") -> None:
        message = redact(str(message))
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only attributes would be lost by the default pickling of exceptions.
        return (_rebuild, (type(self), dict(self.__dict__)))


def _rebuild(cls: type[OpenAIWSError], state: dict[str, Any]) -> OpenAIWSError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class ConfigurationError(OpenAIWSError, ValueError):
    """The client is missing configuration it needs (e.g. ``OPENAI_API_KEY``) or it is invalid."""


class TransportError(OpenAIWSError):
    """The connection to the server failed; the API itself did not answer with an error.

    Attributes:
        retryable: whether sending the same request again may succeed.
    """

    retryable: bool = False


class ConnectError(TransportError, ConnectionError):
    """Opening the connection failed: DNS, TCP, TLS, a proxy, or a refused WebSocket upgrade.

    Attributes:
        status_code: the HTTP status of a refused handshake (e.g. 426: no WebSocket mode at this
            URL, so an ``auto`` client falls back to HTTP), or None when no response arrived.
        headers: the response headers of a refused handshake (credentials masked).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        headers: Mapping[str, Any] | None = None,
        retryable: bool = True,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.headers = redact_headers(headers)
        self.retryable = retryable


class ConnectionClosed(TransportError):
    """The socket closed (or the HTTP body ended) before the response reached a terminal event.

    Attributes:
        code: the WebSocket close code, or None when there was no close frame (e.g. 1006).
        reason: the close reason sent by the server, possibly empty.
        retryable: True for the codes after which a new connection may succeed
            (1001, 1005, 1006, 1011, 1012, 1013, 1015).
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        reason: str = "",
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = redact(reason)
        self.retryable = (
            retryable if retryable is not None else (code is None or code in RETRYABLE_CLOSE_CODES)
        )


class StreamTimeout(TransportError, TimeoutError):
    """No event arrived before a deadline expired: the first-event or idle timeout of a
    response, or the turn's whole budget (``timeout``, which retries and fallbacks share).

    Attributes:
        timeout: the limit that ran out, in seconds.
        phase: where it ran out: ``"connect"`` (opening a socket), ``"first_event"``,
            ``"idle"`` (between two events), or ``"turn"`` (the turn's budget was spent when a
            retry or a fallback would have started).
    """

    def __init__(self, message: str, *, timeout: float | None = None, phase: str = "idle") -> None:
        super().__init__(message)
        self.timeout = timeout
        self.phase = phase
        self.retryable = True


class ProtocolError(OpenAIWSError):
    """The server sent something the protocol does not allow: a frame that is not JSON, a binary
    frame, an event without ``type``, a field of the wrong type, an HTTP body that is not an event
    stream."""


class APIError(OpenAIWSError):
    """The API answered with an error, either as an HTTP status or as an ``error`` event.

    Attributes:
        code: the machine-readable error code (``"previous_response_not_found"``...), or None.
        message: the message the API gave.
        type: the error type (``"invalid_request_error"``...), or None.
        param: the request parameter at fault, or None.
        status_code: the HTTP status (or the ``status`` of an error event), or None.
        request_id: the ``x-request-id`` of the request, when known.
        headers: response headers (credentials masked), e.g. rate-limit headers.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        status_code: int | None = None,
        request_id: str | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.type = type
        self.param = param
        self.status_code = status_code
        self.request_id = request_id
        self.headers = redact_headers(headers)

    def __str__(self) -> str:
        parts = []
        if self.code:
            parts.append(self.code)
        if self.status_code is not None:
            parts.append(f"status {self.status_code}")
        head = f"[{', '.join(parts)}] " if parts else ""
        tail = f" (param: {self.param})" if self.param else ""
        rid = f" [request id: {self.request_id}]" if self.request_id else ""
        return f"{head}{self.message}{tail}{rid}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, code={self.code!r}, "
            f"status_code={self.status_code!r})"
        )

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later: 429 and 5xx, except exhausted quota."""
        if self.code in _NOT_RETRYABLE_CODES:
            return False
        if self.code in ("rate_limit_exceeded", "server_error"):
            return True
        return self.status_code is not None and (self.status_code == 429 or self.status_code >= 500)


class AuthenticationError(APIError):
    """The API key was missing, wrong or revoked (HTTP 401, ``invalid_api_key``)."""


class RateLimitError(APIError):
    """Too many requests (HTTP 429, ``rate_limit_exceeded``).

    Attributes:
        retry_after: seconds the server asked to wait, when it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class PreviousResponseNotFound(APIError):
    """The ``previous_response_id`` is not in the connection cache nor in the store."""


class ConnectionLimitReached(APIError):
    """The WebSocket connection reached its 60-minute limit: open a new one."""


class ContextLengthExceeded(APIError):
    """The input does not fit in the model's context window."""


class ConcurrencyError(OpenAIWSError, RuntimeError):
    """Two threads used one connection for two responses at once.

    A WebSocket carries one response at a time; :class:`~openai_ws.Client` serialises turns of one
    session for you. This is raised when the low-level connection is used concurrently.
    """


#: Codes whose errors no retry can cure, whatever their HTTP status.
_NOT_RETRYABLE_CODES = frozenset(
    {"insufficient_quota", "invalid_api_key", "context_length_exceeded"}
)

_BY_CODE: dict[str, type[APIError]] = {
    "invalid_api_key": AuthenticationError,
    "rate_limit_exceeded": RateLimitError,
    "insufficient_quota": RateLimitError,
    "previous_response_not_found": PreviousResponseNotFound,
    "websocket_connection_limit_reached": ConnectionLimitReached,
    "context_length_exceeded": ContextLengthExceeded,
}


def api_error_from_fields(
    *,
    message: str | None,
    code: str | None = None,
    type: str | None = None,
    param: str | None = None,
    status_code: int | None = None,
    request_id: str | None = None,
    headers: Mapping[str, Any] | None = None,
    retry_after: float | None = None,
) -> APIError:
    """Build the most specific :class:`APIError` subclass for an error's fields.

    The code decides first (it is precise); the HTTP status decides when the code is unknown.
    """
    cls = _BY_CODE.get(code or "")
    if cls is None:
        if status_code == 401:
            cls = AuthenticationError
        elif status_code == 429:
            cls = RateLimitError
        else:
            cls = APIError
    kwargs: dict[str, Any] = {
        "code": code,
        "type": type,
        "param": param,
        "status_code": status_code,
        "request_id": request_id,
        "headers": headers,
    }
    if cls is RateLimitError:
        kwargs["retry_after"] = retry_after
    text = message if message else (code or "the API returned an error without a message")
    return cls(text, **kwargs)
