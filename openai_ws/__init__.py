"""openai-ws: the OpenAI Responses API over WebSocket mode, from ordinary synchronous Python.

This module only re-exports; every name lives in the module named after its concept.
"""

from __future__ import annotations

from ._version import __version__
from .exceptions import (
    APIError,
    AuthenticationError,
    ConcurrencyError,
    ConfigurationError,
    ConnectError,
    ConnectionClosed,
    ConnectionLimitReached,
    ContextLengthExceeded,
    OpenAIWSError,
    PreviousResponseNotFound,
    ProtocolError,
    RateLimitError,
    StreamTimeout,
    TransportError,
)
from .protocol import ResponseAccumulator, parse_server_event
from .sse import SSEDecoder, SSEMessage

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
    "ResponseAccumulator",
    "SSEDecoder",
    "SSEMessage",
    "StreamTimeout",
    "TransportError",
    "__version__",
    "parse_server_event",
]
